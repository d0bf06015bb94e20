/**
 * IoT Hub's per-device MQTT rules and the broker's robustness, probed with a plain MQTT client
 * (`mqtt`) and raw TLS sockets — things the device SDK never does on its own: another device's
 * topics, borrowed tokens, oversized or malformed packets, QoS 2, withheld PUBACKs, takeovers.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { Message as CommonMessage } from 'azure-iot-common';
import { SharedAccessSignature } from 'azure-iot-device';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';
import { registerDevice, type TestDevice } from '../support/devices';
import { collectEvents, type EventLog } from '../support/events';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let eventLog: EventLog;
const clients: MqttClient[] = [];
let nextDevice = 0;

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `raw-device-${nextDevice}`);
}

function mqttPort(): number {
  const port = emulator.connection.ports.mqtt;
  if (port === null) throw new Error('the emulator serves no standard MQTT port');
  return port;
}

/** A device's SAS token, as the SDK makes one. */
function tokenFor(device: TestDevice): string {
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  return SharedAccessSignature.create(
    emulator.connection.hostName,
    device.deviceId,
    device.key,
    expiry,
  ).toString();
}

/** Connects as IoT Hub expects: clientId = device id, user name `<host>/<id>/…`, token as password. */
async function connectAs(
  device: TestDevice,
  overrides: { clientId?: string; username?: string; password?: string } = {},
): Promise<MqttClient> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${mqttPort()}`, {
    servername: 'localhost',
    protocolVersion: 4,
    reconnectPeriod: 0,
    clientId: overrides.clientId ?? device.deviceId,
    username:
      overrides.username ??
      `${emulator.connection.hostName}/${device.deviceId}/?api-version=2021-04-12`,
    password: overrides.password ?? tokenFor(device),
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

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.disconnected) resolve();
    else client.once('close', () => resolve());
  });
}

/**
 * Sends raw bytes over TLS to the MQTT port, then ends its side; resolves once the socket is
 * closed (by the emulator, or after our end).
 */
function sendRaw(bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: mqttPort(), servername: 'localhost' });
    socket.on('secureConnect', () => socket.end(bytes));
    socket.on('error', () => {}); // a reset is one way of being closed
    socket.on('close', () => resolve());
    socket.setTimeout(20_000, () =>
      reject(new Error('the emulator kept a garbage connection open')),
    );
    socket.resume();
  });
}

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  await service.open();
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.endAsync(true)));
});

afterAll(async () => {
  await eventLog?.close();
  await service?.close();
  await emulator?.stop();
});

describe('authentication rules', () => {
  it('refuses a valid token of one device presented under another device id (CONNACK 5)', async () => {
    const a = await createDevice();
    const b = await createDevice();
    await expect(
      connectAs(b, { password: tokenFor(a), username: undefined }),
    ).rejects.toHaveProperty('code', 5);
    await expect(
      connectAs(a, {
        clientId: b.deviceId,
        username: `${emulator.connection.hostName}/${b.deviceId}/`,
      }),
    ).rejects.toHaveProperty('code', 5);
  });

  it('refuses a user name that names another device', async () => {
    const a = await createDevice();
    const b = await createDevice();
    await expect(
      connectAs(a, {
        username: `${emulator.connection.hostName}/${b.deviceId}/?api-version=2021-04-12`,
      }),
    ).rejects.toHaveProperty('code', 5);
  });

  it('lets a second connection with the same client id take over', async () => {
    const device = await createDevice();
    const first = await connectAs(device);
    const firstClosed = closed(first);
    const second = await connectAs(device);
    await firstClosed;
    await second.publishAsync(`devices/${device.deviceId}/messages/events/`, 'from the second', {
      qos: 1,
    });
    const [event] = await until('the event', () => {
      const found = eventLog.from(device.deviceId);
      return found.length > 0 ? found : undefined;
    });
    expect(Buffer.from(event?.body as Uint8Array).toString()).toBe('from the second');
  });
});

describe('connection lifetime', () => {
  it('drops a connection when its token expires', async () => {
    const device = await createDevice();
    const soon = Math.floor(Date.now() / 1000) + 2;
    const token = SharedAccessSignature.create(
      emulator.connection.hostName,
      device.deviceId,
      device.key,
      soon,
    ).toString();
    const client = await connectAs(device, { password: token });
    await closed(client); // bounded by Jest's timeout; the hub closes it at expiry
    expect(Date.now()).toBeGreaterThanOrEqual(soon * 1000);
  });

  it('drops a connection when the device is deleted or its keys change', async () => {
    const deleted = await createDevice();
    const deletedClient = await connectAs(deleted);
    const deletedClosed = closed(deletedClient);
    await registry.delete(deleted.deviceId);
    await deletedClosed;

    const rekeyed = await createDevice();
    const rekeyedClient = await connectAs(rekeyed);
    const rekeyedClosed = closed(rekeyedClient);
    const { responseBody } = await registry.get(rekeyed.deviceId);
    await registry.update({
      ...responseBody,
      authentication: {
        symmetricKey: {
          primaryKey: Buffer.from('a brand new primary key!').toString('base64'),
          secondaryKey: Buffer.from('a brand new secondary key').toString('base64'),
        },
      },
    });
    await rekeyedClosed;
    await expect(connectAs(rekeyed)).rejects.toHaveProperty('code', 5);
  });
});

describe('topic rules', () => {
  it('drops a device that publishes to another device’s events topic, storing nothing', async () => {
    const attacker = await createDevice();
    const victim = await createDevice();
    const client = await connectAs(attacker);
    const dropped = closed(client);
    client.publish(`devices/${victim.deviceId}/messages/events/`, 'forged', { qos: 1 });
    await dropped;

    // Whatever the victim sends next is the only thing under its name.
    const own = await connectAs(victim);
    await own.publishAsync(`devices/${victim.deviceId}/messages/events/`, 'genuine', { qos: 1 });
    const found = await until('the genuine event', () => {
      const mine = eventLog.from(victim.deviceId);
      return mine.length > 0 ? mine : undefined;
    });
    expect(found.map((e) => Buffer.from(e.body as Uint8Array).toString())).toEqual(['genuine']);
  });

  it('drops a device that publishes outside IoT Hub’s topics or with QoS 2', async () => {
    const device = await createDevice();
    const stray = await connectAs(device);
    const strayClosed = closed(stray);
    stray.publish('some/other/topic', 'x', { qos: 0 });
    await strayClosed;

    const qos2 = await connectAs(device);
    const qos2Closed = closed(qos2);
    qos2.publish(`devices/${device.deviceId}/messages/events/`, 'x', { qos: 2 });
    await qos2Closed;
  });

  it('refuses a subscription to another device’s C2D topic and grants its own', async () => {
    const a = await createDevice();
    const b = await createDevice();
    const client = await connectAs(a);
    const refused = await client
      .subscribeAsync(`devices/${b.deviceId}/messages/devicebound/#`, { qos: 1 })
      .then(
        (granted) => granted.map((g) => g.qos),
        (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
      );
    expect(refused).toEqual([128]);
    const granted = await client.subscribeAsync(`devices/${a.deviceId}/messages/devicebound/#`, {
      qos: 1,
    });
    expect(granted.map((g) => g.qos)).toEqual([1]);

    // b's messages still go to b only.
    const received: string[] = [];
    client.on('message', (topic) => received.push(topic));
    await service.send(b.deviceId, new CommonMessage('for b'));
    await service.send(a.deviceId, new CommonMessage('for a'));
    await until('a’s message', () => (received.length > 0 ? received : undefined));
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(new RegExp(`^devices/${a.deviceId}/messages/devicebound/`));
  });
});

describe('cloud-to-device delivery', () => {
  it('redelivers a message whose PUBACK never came once the connection drops', async () => {
    const device = await createDevice();
    const message = new CommonMessage('unacknowledged');
    message.messageId = `redeliver-${device.deviceId}`;
    await service.send(device.deviceId, message);

    const silent = await connectAs(device);
    const withheld: IPublishPacket[] = [];
    // mqtt.js sends the PUBACK only when handleMessage calls back: never do.
    silent.handleMessage = (packet) => {
      withheld.push(packet);
    };
    await silent.subscribeAsync(`devices/${device.deviceId}/messages/devicebound/#`, { qos: 1 });
    await until('the first delivery', () => (withheld.length > 0 ? withheld : undefined));
    await silent.endAsync(true);

    const acking = await connectAs(device);
    const topics: string[] = [];
    acking.on('message', (topic) => topics.push(topic));
    await acking.subscribeAsync(`devices/${device.deviceId}/messages/devicebound/#`, { qos: 1 });
    await until('the redelivery', () => (topics.length > 0 ? topics : undefined));
    expect(topics[0]).toContain(encodeURIComponent(`redeliver-${device.deviceId}`));
  });
});

describe('twin and method topics', () => {
  /** Subscribes to twin responses and returns the topics and bodies that arrive. */
  async function twinResponses(client: MqttClient): Promise<{ topic: string; body: string }[]> {
    const responses: { topic: string; body: string }[] = [];
    client.on('message', (topic, payload) => responses.push({ topic, body: payload.toString() }));
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
    return responses;
  }

  it('answers a bad reported patch 400 and one over 32 KB 413, keeping the connection', async () => {
    const device = await createDevice();
    const client = await connectAs(device);
    const responses = await twinResponses(client);
    await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=1', 'not json');
    const big = JSON.stringify(
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'x'.repeat(1000)])),
    );
    await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=2', big);
    await client.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=3', '{"ok":1}');
    await until('three twin responses', () => (responses.length >= 3 ? true : undefined));
    expect(responses.map((r) => r.topic)).toEqual([
      '$iothub/twin/res/400/?$rid=1',
      '$iothub/twin/res/413/?$rid=2',
      '$iothub/twin/res/204/?$rid=3&$version=2',
    ]);
    expect(client.connected).toBe(true);
  });

  it('ignores a method answer for a request id it never sent, and keeps the connection', async () => {
    const device = await createDevice();
    const client = await connectAs(device);
    const responses = await twinResponses(client);
    await client.publishAsync('$iothub/methods/res/200/?$rid=never-sent', '{"x":1}');
    await client.publishAsync('$iothub/twin/GET/?$rid=after', '');
    await until('the twin after the stray answer', () =>
      responses.find((r) => r.topic === '$iothub/twin/res/200/?$rid=after'),
    );
    expect(client.connected).toBe(true);
  });
});

describe('limits and garbage', () => {
  it('accepts a message under 256 KB and drops the connection for one over it', async () => {
    const device = await createDevice();
    const client = await connectAs(device);
    const topic = `devices/${device.deviceId}/messages/events/`;
    await client.publishAsync(topic, Buffer.alloc(250 * 1024, 1), { qos: 1 });
    const dropped = closed(client);
    client.publish(topic, Buffer.alloc(300 * 1024, 1), { qos: 1 });
    await dropped;
    const sizes = await until('the accepted message', () => {
      const mine = eventLog.from(device.deviceId);
      return mine.length > 0 ? mine : undefined;
    });
    expect(sizes.map((e) => (e.body as Uint8Array).length)).toEqual([250 * 1024]);
  });

  it('closes connections that send garbage, without disturbing a connected device', async () => {
    const device = await createDevice();
    const bystander = await connectAs(device);

    await sendRaw(randomBytes(4096));
    await sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    // A CONNECT header that announces a 256 MB packet.
    await sendRaw(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    // A valid header, then a truncated body and an abrupt end.
    await sendRaw(Buffer.from([0x10, 0x20, 0x00, 0x04, 0x4d]));

    expect(bystander.connected).toBe(true);
    await bystander.publishAsync(`devices/${device.deviceId}/messages/events/`, 'still here', {
      qos: 1,
    });
    const later = await connectAs(device);
    expect(later.connected).toBe(true);
  });
});
