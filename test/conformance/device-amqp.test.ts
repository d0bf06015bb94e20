/**
 * Devices over AMQP: the unmodified `azure-iot-device` client with the official
 * `azure-iot-device-amqp` transport (`Amqp`), SAS keys. The transport dials `amqps://<HostName>`
 * and honours a `host:port` HostName, so no seam is needed. Telemetry is read back through the
 * Event Hub-compatible endpoint with `@azure/event-hubs`; C2D is sent, its feedback read and
 * methods invoked with the official `azure-iothub` `Client`; twins are checked with `Registry`.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import type { ReceivedEventData } from '@azure/event-hubs';
import { Message, NoRetry } from 'azure-iot-common';
import { Amqp as AmqpBase } from 'azure-iot-amqp-base';
import { Client as DeviceClient, SharedAccessSignature } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import type { FeedbackRecord } from '../../emulator/core/contracts';
import { createRegistry, createServiceClient } from '../../lib/iothub/registry-agent';
import { dataText, registerDevice, report, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let events: EventLog;
const feedback: FeedbackRecord[] = [];
const clients: DeviceClient[] = [];
let nextDevice = 0;

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `amqp-device-${nextDevice}`);
}

/** An `Amqp` device client on the local hub that fails fast (no retries), opened. */
async function amqpDevice(deviceId: string, key: string): Promise<DeviceClient> {
  const client = DeviceClient.fromConnectionString(
    emulator.connection.deviceConnectionString(deviceId, key),
    Amqp,
  );
  client.setRetryPolicy(new NoRetry());
  clients.push(client);
  await client.open();
  return client;
}

function inbox(client: DeviceClient): Message[] {
  const received: Message[] = [];
  client.on('message', (message: Message) => received.push(message));
  return received;
}

function nth(received: Message[], n: number): Promise<Message> {
  return until(`C2D message #${n}`, () => received[n - 1]);
}

function c2dMessage(messageId: string, ack = 'full'): Message {
  const message = new Message(`body of ${messageId}`);
  message.messageId = messageId;
  message.ack = ack;
  return message;
}

function feedbackFor(messageId: string): Promise<FeedbackRecord> {
  return until(`feedback for ${messageId}`, () =>
    feedback.find((record) => record.originalMessageId === messageId),
  );
}

function eventWithId(deviceId: string, messageId: string): Promise<ReceivedEventData> {
  return until(`event ${messageId}`, () =>
    events.from(deviceId).find((event) => event.messageId === messageId),
  );
}

function errorOf(work: Promise<unknown>): Promise<Error | undefined> {
  return work.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
}

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true, args: ['--feedback-delay-ms', '100'] });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  events = collectEvents(emulator.connection.eventsConnectionString);
  service = createServiceClient(emulator.connection.serviceConnectionString);
  await service.open();
  const { result: receiver } = await service.getFeedbackReceiver();
  receiver.on('message', (message: Message) => {
    feedback.push(...(JSON.parse(dataText(message)) as FeedbackRecord[]));
    void receiver.complete(message);
  });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await service?.close();
  await events?.close();
  await emulator?.stop();
});

describe('telemetry over Amqp', () => {
  it('lands in the Event Hub-compatible endpoint with system and application properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.messageId = 'amqp-telemetry-1';
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('Alert', 'high');
    await client.sendEvent(message);
    const event = await eventWithId(deviceId, 'amqp-telemetry-1');
    expect(event.body).toEqual({ temperature: 21.5 });
    expect(event.correlationId).toBe('corr-1');
    expect(event.contentType).toBe('application/json');
    expect(event.properties).toEqual({ Alert: 'high' });
    expect(event.getRawAmqpMessage().properties?.contentEncoding).toBe('utf-8');
    expect(event.systemProperties).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-connection-auth-method':
        '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    });
  });
});

describe('authentication over Amqp', () => {
  it('a wrong device key is refused with UnauthorizedError', async () => {
    const { deviceId } = await createDevice();
    const error = await errorOf(amqpDevice(deviceId, Buffer.alloc(32, 9).toString('base64')));
    expect(error?.name).toBe('UnauthorizedError');
  });

  it('a device cannot attach another device’s link (amqp:unauthorized-access)', async () => {
    const mine = await createDevice();
    const other = await createDevice();
    // The SDK's own AMQP layer (what `Amqp` is built on), to name a link the device client never would.
    const amqp = new AmqpBase(false);
    const call = <T>(run: (done: (error?: Error | null, result?: T) => void) => void): Promise<T> =>
      new Promise((resolve, reject) =>
        run((error, result) => (error ? reject(error) : resolve(result as T))),
      );
    await call((done) =>
      amqp.connect(
        { uri: `amqps://${emulator.connection.hostName}`, userAgentString: 'test' },
        done,
      ),
    );
    try {
      await call((done) => amqp.initializeCBS(done));
      const token = SharedAccessSignature.create(
        emulator.connection.hostName,
        mine.deviceId,
        mine.key,
        Math.floor(Date.now() / 1000) + 3600,
      ).toString();
      const audience = encodeURIComponent(
        `${emulator.connection.hostName}/devices/${mine.deviceId}`,
      );
      await call((done) => amqp.putToken(audience, token, done));
      await call((done) =>
        amqp.attachSenderLink(`/devices/${mine.deviceId}/messages/events`, {}, done),
      );
      // The hub answers the attach and detaches at once with the error, as IoT Hub does; the
      // SDK surfaces a detach with an error as a disconnect.
      const disconnected: unknown[] = [];
      amqp.setDisconnectHandler((error) => disconnected.push(error));
      await call((done) =>
        amqp.attachSenderLink(`/devices/${other.deviceId}/messages/events`, {}, done),
      ).catch((error: unknown) => disconnected.push(error));
      const error = await until('the refusal', () => disconnected[0]);
      expect(error).toMatchObject({ condition: 'amqp:unauthorized-access' });
    } finally {
      await call((done) => amqp.disconnect(done));
    }
  });
  it('disabling a connected device closes its links, and it cannot come back', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    inbox(client);
    await until('the C2D link attached', () =>
      registry
        .get(deviceId)
        .then(({ responseBody }) =>
          String(responseBody.connectionState).toLowerCase() === 'connected' ? true : undefined,
        ),
    );
    const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    const { responseBody } = await registry.get(deviceId);
    await registry.update({ ...responseBody, status: 'disabled' });
    await disconnected;
    const error = await errorOf(client.sendEvent(new Message('after disable')));
    expect(error?.name).toBe('UnauthorizedError');
  });
});

describe('cloud-to-device over Amqp', () => {
  it('complete: the message arrives with its properties and the service gets Success feedback', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const received = inbox(client);
    const message = c2dMessage('amqp-complete');
    message.correlationId = 'c2d-corr';
    message.properties.add('command', 'reboot');
    await service.send(deviceId, message);
    const delivered = await nth(received, 1);
    expect(delivered.messageId).toBe('amqp-complete');
    expect(delivered.correlationId).toBe('c2d-corr');
    expect(dataText(delivered)).toBe('body of amqp-complete');
    expect(delivered.properties.getValue('command')).toBe('reboot');
    await client.complete(delivered);
    expect(await feedbackFor('amqp-complete')).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  it('reject: Rejected feedback, and the message is not delivered again', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const received = inbox(client);
    await service.send(deviceId, c2dMessage('amqp-reject'));
    await client.reject(await nth(received, 1));
    expect(await feedbackFor('amqp-reject')).toMatchObject({ deviceId, statusCode: 'Rejected' });
    await service.send(deviceId, c2dMessage('amqp-after-reject', 'none'));
    expect((await nth(received, 2)).messageId).toBe('amqp-after-reject');
  });

  it('abandon: the message comes back, and completing it then gives Success', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const received = inbox(client);
    await service.send(deviceId, c2dMessage('amqp-abandon'));
    await client.abandon(await nth(received, 1));
    const again = await nth(received, 2);
    expect(again.messageId).toBe('amqp-abandon');
    await client.complete(again);
    expect(await feedbackFor('amqp-abandon')).toMatchObject({ deviceId, statusCode: 'Success' });
  });
});

describe('twin and methods over Amqp', () => {
  it('gets the twin, reports properties the registry sees, and receives a desired patch', async () => {
    const { deviceId, key } = await createDevice();
    await registry.updateTwin(deviceId, { properties: { desired: { interval: 5 } } }, '*');
    const client = await amqpDevice(deviceId, key);
    const twin = await client.getTwin();
    expect(twin.properties.desired).toMatchObject({ interval: 5 });
    await report(twin, { firmware: '1.2.3' });
    const { responseBody } = await registry.getTwin(deviceId);
    expect(responseBody.properties.reported).toMatchObject({ firmware: '1.2.3' });
    const patches: Record<string, unknown>[] = [];
    twin.on('properties.desired', (patch: Record<string, unknown>) => patches.push(patch));
    // The listener enables the desired notifications in the background; asking again (the same
    // PUT on the twin link) tells the test when the hub has them on.
    await new Promise<void>((resolve, reject) =>
      twin.enableTwinDesiredPropertiesUpdates((error) => (error ? reject(error) : resolve())),
    );
    await registry.updateTwin(deviceId, { properties: { desired: { interval: 9 } } }, '*');
    await until('desired patch with interval 9', () => patches.find((p) => p.interval === 9));
  });

  it('answers a direct method invoked through the service client', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const seen: unknown[] = [];
    client.onDeviceMethod('SetInterval', (request, response) => {
      seen.push(request.payload);
      void response.send(201, { applied: request.payload });
    });
    // The SDK attaches its method links after onDeviceMethod returns; the connect timeout
    // lets the hub wait for them, as IoT Hub does.
    const { result } = await service.invokeDeviceMethod(deviceId, {
      methodName: 'SetInterval',
      payload: { seconds: 7 },
      connectTimeoutInSeconds: 10,
    });
    expect(result).toEqual({ status: 201, payload: { applied: { seconds: 7 } } });
    expect(seen).toEqual([{ seconds: 7 }]);
  });
});
