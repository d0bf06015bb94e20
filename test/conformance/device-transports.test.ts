/**
 * The same device scenarios over every transport of the official device SDK (azure-iot-device
 * 1.18.4) with SAS keys: `Mqtt`, `Amqp` and `Http`, unmodified. Telemetry is read back through
 * the Event Hub-compatible endpoint with `@azure/event-hubs`; C2D is sent and its feedback read
 * with `azure-iothub`'s `Client`, which also invokes methods; twins are checked with `Registry`.
 * A scenario a transport does not offer (MQTT cannot reject or abandon; HTTPS has no twin or
 * methods in the SDK) is left out of its row, as the SDK itself refuses it.
 *
 * Transport-specific behaviour (authentication, limits, host:port recipes) stays in
 * `mqtt*.test.ts`, `device-amqp.test.ts` and `device-http.test.ts`.
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import type { ReceivedEventData } from '@azure/event-hubs';
import { Message, NoRetry } from 'azure-iot-common';
import { Client as DeviceClient } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import { Http } from 'azure-iot-device-http';
import { Mqtt } from 'azure-iot-device-mqtt';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import { HostPortAgent } from '../../lib/iothub/registry-agent';
import { dataText, desiredEvents, registerDevice, report } from '../support/devices';
import {
  c2dMessage,
  inbox,
  nthMessage,
  startC2dService,
  type C2dService,
} from '../support/c2d-service';
import type { EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';

interface Transport {
  name: string;
  protocol: typeof Mqtt | typeof Amqp | typeof Http;
  /** The SDK offers reject and abandon for C2D. */
  settles: boolean;
  /** The SDK offers twins and direct methods. */
  twinAndMethods: boolean;
}

const transports: Transport[] = [
  { name: 'Mqtt', protocol: Mqtt, settles: false, twinAndMethods: true },
  { name: 'Amqp', protocol: Amqp, settles: true, twinAndMethods: true },
  { name: 'Http', protocol: Http, settles: true, twinAndMethods: false },
];

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let events: EventLog;
let hub: C2dService;
const clients: DeviceClient[] = [];
let nextDevice = 0;

/** A new device connected over `transport`, failing fast (no retries), opened. */
async function connectedDevice(
  transport: Transport,
): Promise<{ deviceId: string; client: DeviceClient }> {
  nextDevice += 1;
  const { deviceId, key } = await registerDevice(
    registry,
    `${transport.name.toLowerCase()}-scenario-${nextDevice}`,
  );
  const client = DeviceClient.fromConnectionString(
    emulator.connection.deviceConnectionString(deviceId, key),
    transport.protocol,
  );
  client.setRetryPolicy(new NoRetry());
  clients.push(client);
  if (transport.protocol === Http) {
    // The Http transport needs an agent that honours host:port (see device-http.test.ts), and
    // polls for C2D every 200 ms here.
    await client.setOptions({
      http: { agent: new HostPortAgent({ keepAlive: true }), receivePolicy: { interval: 0.2 } },
    });
  }
  await client.open();
  return { deviceId, client };
}

const feedbackFor = (messageId: string) => hub.feedbackArrived(messageId);

function eventWithId(deviceId: string, messageId: string): Promise<ReceivedEventData> {
  return until(`event ${messageId}`, () =>
    events.from(deviceId).find((event) => event.messageId === messageId),
  );
}

beforeAll(async () => {
  hub = await startC2dService();
  ({ emulator, registry, service } = hub);
  events = collectEvents(emulator.connection.eventsConnectionString);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await events?.close();
  await hub?.stop();
});

describe.each(transports)('device scenarios over $name', (transport) => {
  const id = (what: string): string => `${transport.name.toLowerCase()}-${what}`;

  it('telemetry lands in the Event Hub-compatible endpoint with its properties', async () => {
    const { deviceId, client } = await connectedDevice(transport);
    const message = new Message(JSON.stringify({ temperature: 21.5 }));
    message.messageId = id('telemetry');
    message.correlationId = 'corr-1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('Alert', 'high');
    await client.sendEvent(message);
    const event = await eventWithId(deviceId, id('telemetry'));
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

  it('C2D complete: the message arrives with its properties; the service gets Success', async () => {
    const { deviceId, client } = await connectedDevice(transport);
    const received = inbox(client);
    const message = c2dMessage(id('complete'));
    message.correlationId = 'c2d-corr';
    await service.send(deviceId, message);
    const delivered = await nthMessage(received, 1);
    expect(delivered.messageId).toBe(id('complete'));
    expect(delivered.correlationId).toBe('c2d-corr');
    expect(dataText(delivered)).toBe(`body of ${id('complete')}`);
    await client.complete(delivered);
    expect(await feedbackFor(id('complete'))).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  if (transport.settles) {
    it('C2D reject: Rejected feedback, and the message is not delivered again', async () => {
      const { deviceId, client } = await connectedDevice(transport);
      const received = inbox(client);
      await service.send(deviceId, c2dMessage(id('reject')));
      await client.reject(await nthMessage(received, 1));
      expect(await feedbackFor(id('reject'))).toMatchObject({ deviceId, statusCode: 'Rejected' });
      await service.send(deviceId, c2dMessage(id('after-reject'), 'none'));
      expect((await nthMessage(received, 2)).messageId).toBe(id('after-reject'));
    });

    it('C2D abandon: the message comes back; completing it then gives Success', async () => {
      const { deviceId, client } = await connectedDevice(transport);
      const received = inbox(client);
      await service.send(deviceId, c2dMessage(id('abandon')));
      await client.abandon(await nthMessage(received, 1));
      const again = await nthMessage(received, 2);
      expect(again.messageId).toBe(id('abandon'));
      await client.complete(again);
      expect(await feedbackFor(id('abandon'))).toMatchObject({ deviceId, statusCode: 'Success' });
    });
  }

  if (transport.twinAndMethods) {
    it('twin: get, a reported patch the registry sees, and a desired patch pushed', async () => {
      const { deviceId, client } = await connectedDevice(transport);
      await registry.updateTwin(deviceId, { properties: { desired: { interval: 5 } } }, '*');
      const twin = await client.getTwin();
      expect(twin.properties.desired).toMatchObject({ interval: 5 });
      await report(twin, { firmware: '1.2.3' });
      const { responseBody } = await registry.getTwin(deviceId);
      expect(responseBody.properties.reported).toMatchObject({ firmware: '1.2.3' });
      const patches = await desiredEvents(twin);
      await registry.updateTwin(deviceId, { properties: { desired: { interval: 9 } } }, '*');
      await until('desired patch with interval 9', () => patches.find((p) => p.interval === 9));
    });

    it('a direct method invoked through the service client is answered', async () => {
      const { deviceId, client } = await connectedDevice(transport);
      const seen: unknown[] = [];
      client.onDeviceMethod('SetInterval', (request, response) => {
        seen.push(request.payload);
        void response.send(201, { applied: request.payload });
      });
      // The SDK subscribes or attaches after onDeviceMethod returns; the connect timeout lets
      // the hub wait for it, as IoT Hub does.
      const { result } = await service.invokeDeviceMethod(deviceId, {
        methodName: 'SetInterval',
        payload: { seconds: 7 },
        connectTimeoutInSeconds: 10,
      });
      expect(result).toEqual({ status: 201, payload: { applied: { seconds: 7 } } });
      expect(seen).toEqual([{ seconds: 7 }]);
    });
  }
});
