/**
 * What IoT Hub's "communicate with IoT Hub using MQTT" doc says about CONNECT and PUBLISH, probed
 * with a plain MQTT client (`mqtt`), as third-party clients (paho, mosquitto) connect: MQTT 3.1.1
 * only, the `api-version` in the user name, a token that must name this hub, RETAIN and Will
 * messages marked with application properties.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { SharedAccessSignature } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { collectEvents, type EventLog } from '../support/events';
import { registerDevice, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
let eventLog: EventLog;
const clients: MqttClient[] = [];
let nextDevice = 0;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.endAsync(true)));
});

afterAll(async () => {
  await eventLog?.close();
  await emulator?.stop();
});

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `connect-rules-${nextDevice}`);
}

function tokenFor(device: TestDevice, host = emulator.connection.hostName): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  return SharedAccessSignature.create(host, device.deviceId, device.key, expiry).toString();
}

function userName(device: TestDevice, options = '?api-version=2021-04-12'): string {
  return `${emulator.connection.hostName}/${device.deviceId}/${options}`;
}

/** Connects and resolves once CONNACK says yes; rejects with the refusal (its `code`) otherwise. */
async function connect(device: TestDevice, options: IClientOptions = {}): Promise<MqttClient> {
  const port = emulator.connection.ports.mqtt;
  if (port === null) throw new Error('the emulator serves no standard MQTT port');
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
    servername: 'localhost',
    protocolVersion: 4,
    reconnectPeriod: 0,
    clientId: device.deviceId,
    username: userName(device),
    password: tokenFor(device),
    ...options,
  });
  clients.push(client);
  client.on('error', () => {}); // refusals are asserted through the promise below
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

function eventsOf(device: TestDevice, count: number) {
  return until(`${count} event(s) from ${device.deviceId}`, () => {
    const mine = eventLog.from(device.deviceId);
    return mine.length >= count ? mine : undefined;
  });
}

describe('CONNECT', () => {
  it('refuses MQTT 3.1 with CONNACK 1 (unacceptable protocol version)', async () => {
    const device = await createDevice();
    await expect(
      connect(device, { protocolVersion: 3, protocolId: 'MQIsdp' }),
    ).rejects.toHaveProperty('code', 1);
  });

  it('refuses an api-version the hub does not know with CONNACK 1, accepts none or a known one', async () => {
    const device = await createDevice();
    await expect(
      connect(device, { username: userName(device, '?api-version=1999-01-01') }),
    ).rejects.toHaveProperty('code', 1);
    expect((await connect(device, { username: userName(device, '') })).connected).toBe(true);
    const known = await connect(device, { username: userName(device, '?api-version=2018-06-30') });
    expect(known.connected).toBe(true);
  });

  it('refuses a correctly signed token whose sr names another hub (CONNACK 5)', async () => {
    const device = await createDevice();
    await expect(
      connect(device, { password: tokenFor(device, 'other-hub.azure-devices.net') }),
    ).rejects.toHaveProperty('code', 5);
  });
});

describe('PUBLISH', () => {
  it('marks a RETAIN publish with mqtt-retain=true, and only that one', async () => {
    const device = await createDevice();
    const client = await connect(device);
    const topic = `devices/${device.deviceId}/messages/events/`;
    await client.publishAsync(topic, 'retained', { qos: 1, retain: true });
    await client.publishAsync(topic, 'plain', { qos: 1 });
    const [retained, plain] = await eventsOf(device, 2);
    expect(retained?.properties?.['mqtt-retain']).toBe('true');
    expect(plain?.properties?.['mqtt-retain']).toBeUndefined();
  });

  it('forwards the Will message of a connection that ends without DISCONNECT, marked Will', async () => {
    const device = await createDevice();
    const client = await connect(device, {
      will: {
        topic: `devices/${device.deviceId}/messages/events/reason=lost`,
        payload: Buffer.from('gone'),
        qos: 1,
        retain: false,
      },
    });
    // A clean DISCONNECT discards the Will; a dropped socket publishes it.
    client.stream.destroy();
    const [will] = await eventsOf(device, 1);
    expect(Buffer.from(will?.body as Uint8Array).toString()).toBe('gone');
    expect(will?.properties).toMatchObject({ 'iothub-MessageType': 'Will', reason: 'lost' });
  });

  it('discards the Will of a connection that ends with DISCONNECT', async () => {
    const device = await createDevice();
    const client = await connect(device, {
      will: {
        topic: `devices/${device.deviceId}/messages/events/`,
        payload: Buffer.from('never sent'),
        qos: 1,
        retain: false,
      },
    });
    await client.endAsync();
    // A later message is read after anything the disconnect could have produced.
    const next = await connect(device);
    await next.publishAsync(`devices/${device.deviceId}/messages/events/`, 'after', { qos: 1 });
    const events = await eventsOf(device, 1);
    expect(events.map((e) => Buffer.from(e.body as Uint8Array).toString())).toEqual(['after']);
  });
});
