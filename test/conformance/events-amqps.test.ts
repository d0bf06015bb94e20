/**
 * The Event Hub-compatible endpoint on the AMQPS ports, for clients that only speak TLS (Python
 * azure-eventhub always dials 5671): `eventsTlsConnectionString` works unmodified with
 * `@azure/event-hubs`, links are told apart from the service surface's by address and grants by
 * audience, `jwt` is accepted as a put-token type, and a receiver's link properties are echoed.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { createHmac } from 'node:crypto';
import { Message } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { create_container, type Connection, type EventContext, type Receiver } from 'rhea';
import { laterAttachAnswered } from '../support/amqp-round-trip';
import { parseConnectionString } from '../../lib/connection-string';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents } from '../support/events';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
const connections: Connection[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
});

afterEach(() => {
  for (const connection of connections.splice(0)) connection.close();
});

afterAll(async () => {
  await emulator?.stop();
});

function amqpsPort(): number {
  const port = emulator.connection.ports.amqp;
  if (port === null) throw new Error('the emulator serves no standard AMQPS port');
  return port;
}

/** An Event Hub SAS token for `audience`, signed with the `service` policy. */
function eventHubToken(audience: string): string {
  const key = parseConnectionString(emulator.connection.eventsTlsConnectionString).SharedAccessKey;
  const sr = encodeURIComponent(audience);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = createHmac('sha256', Buffer.from(key ?? '', 'base64'))
    .update(`${sr}\n${se}`)
    .digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=service`;
}

function connect(port: number, tls = true): Promise<Connection> {
  const options = { host: '127.0.0.1', port, reconnect: false };
  const connection = create_container().connect(
    tls ? { ...options, transport: 'tls', servername: 'localhost' } : options,
  );
  connections.push(connection);
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(connection));
    connection.once('disconnected', (context: EventContext) =>
      reject(context.error ?? new Error('disconnected')),
    );
  });
}

/** put-token over $cbs with the given token type; resolves with the reply's status code. */
function putToken(connection: Connection, audience: string, type: string): Promise<unknown> {
  return new Promise((resolve) => {
    const replyTo = `cbs-reply-${Math.random().toString(16).slice(2)}`;
    const receiver = connection.open_receiver({
      source: { address: '$cbs' },
      target: { address: replyTo },
    });
    const sender = connection.open_sender({ target: { address: '$cbs' } });
    receiver.on('message', (context: EventContext) => {
      const properties = context.message?.application_properties as Record<string, unknown>;
      resolve(properties['status-code']);
    });
    sender.once('sendable', () => {
      sender.send({
        message_id: 'put-1',
        reply_to: replyTo,
        body: eventHubToken(audience),
        application_properties: { operation: 'put-token', name: audience, type },
      });
    });
  });
}

/** Attaches a link and resolves once the hub answered: opened, or refused with a condition. */
function attached(link: Receiver | ReturnType<Connection['open_sender']>): Promise<string> {
  return new Promise((resolve) => {
    link.once(link.is_sender() ? 'sender_error' : 'receiver_error', (context: EventContext) => {
      const error = (context.sender ?? context.receiver)?.error as { condition?: string };
      resolve(error?.condition ?? 'error');
    });
    link.once(link.is_sender() ? 'sendable' : 'receiver_open', () => {
      // A refusal (attach, then detach at once) has arrived once a later attach is answered.
      void laterAttachAnswered(link.connection).then(() =>
        resolve(link.is_open() && !link.error ? 'open' : 'refused'),
      );
    });
  });
}

const partitionZero = () =>
  `${emulator.connection.eventsName}/ConsumerGroups/$Default/Partitions/0`;

it('@azure/event-hubs reads device telemetry with eventsTlsConnectionString (TLS, AMQPS port)', async () => {
  expect(emulator.connection.eventsTlsConnectionString).not.toContain('UseDevelopmentEmulator');
  const { key } = await registerDevice(registry, 'tls-reader-device');
  const device = mqttDeviceClient(
    emulator.connection.deviceConnectionString('tls-reader-device', key),
  );
  await device.open();
  await device.sendEvent(new Message('over tls'));
  await device.close();

  const log = collectEvents(emulator.connection.eventsTlsConnectionString);
  try {
    const [mine] = await until('the event over TLS', () => {
      const events = log.from('tls-reader-device');
      return events.length > 0 ? events : undefined;
    });
    expect(Buffer.from(mine?.body as Uint8Array).toString()).toBe('over tls');
  } finally {
    await log.close();
  }
});

it('accepts a jwt-typed put-token on both endpoints and echoes a receiver’s link properties', async () => {
  const plain = await connect(emulator.connection.ports.events, false);
  expect(Number(await putToken(plain, `sb://localhost/${partitionZero()}`, 'jwt'))).toBe(200);

  const tls = await connect(amqpsPort());
  expect(
    Number(await putToken(tls, `sb://localhost/${emulator.connection.eventsName}`, 'jwt')),
  ).toBe(200);
  const receiver = tls.open_receiver({
    source: { address: partitionZero() },
    properties: { 'com.microsoft:receiver-name': 'python-like' },
    credit_window: 0,
  });
  expect(await attached(receiver)).toBe('open');
  expect(receiver.properties).toMatchObject({ 'com.microsoft:receiver-name': 'python-like' });
});

it('an Event Hub grant authorizes no service link on the same connection', async () => {
  const tls = await connect(amqpsPort());
  expect(
    Number(await putToken(tls, `sb://localhost/${emulator.connection.eventsName}`, 'jwt')),
  ).toBe(200);
  const c2d = tls.open_sender({ target: { address: '/messages/devicebound' } });
  expect(await attached(c2d)).toBe('amqp:unauthorized-access');
  // …while the Event Hub links it covers open.
  expect(
    await attached(tls.open_receiver({ source: { address: partitionZero() }, credit_window: 0 })),
  ).toBe('open');
});

it('refuses Event Hub links on the AMQPS port without a covering put-token', async () => {
  const tls = await connect(amqpsPort());
  const receiver = tls.open_receiver({ source: { address: partitionZero() }, credit_window: 0 });
  expect(await attached(receiver)).toBe('amqp:unauthorized-access');
});
