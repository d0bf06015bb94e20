/**
 * MQTT and AMQP over WebSockets at `/$iothub/websocket` on the TLS gateway, driven by the official
 * SDKs' WebSocket transports: a device on `MqttWs` (azure-iot-device-mqtt) or `AmqpWs`
 * (azure-iot-device-amqp) and the service client on `AmqpWs` (azure-iothub). All always dial 443;
 * the hub here is on an ephemeral port, reached through the seams in ../support/websockets.ts (the
 * same recipe docs/emulator.md gives).
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import tls from 'node:tls';
import { Message, type Message as CommonMessage } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import type { Client as ServiceClient, Registry } from 'azure-iothub';
import WebSocket from 'ws';
import type { FeedbackRecord } from '@iot-hub-functions/local-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { dataText, registerDevice, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { collectEvents, type EventLog } from '../support/events';
import { until } from '../support/wait';
import { amqpWsDeviceClient, amqpWsServiceClient, mqttWsDeviceClient } from '../support/websockets';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let eventLog: EventLog;
const feedback: FeedbackRecord[] = [];
const devices: DeviceClient[] = [];
let nextDevice = 0;

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `ws-device-${nextDevice}`);
}

async function wsDevice(deviceId: string, key: string): Promise<DeviceClient> {
  const client = await mqttWsDeviceClient(emulator.connection.hostName, deviceId, key);
  devices.push(client);
  return client;
}

beforeAll(async () => {
  emulator = await startEmulator({
    inMemory: true,
    // A short handshake deadline, so the silent-peer test below finishes quickly.
    args: ['--feedback-delay-ms', '100', '--handshake-timeout-ms', '3000'],
  });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = amqpWsServiceClient(emulator.connection.serviceConnectionString);
  await service.open();
  const { result: receiver } = await service.getFeedbackReceiver();
  receiver.on('message', (message: CommonMessage) => {
    feedback.push(...(JSON.parse(dataText(message)) as FeedbackRecord[]));
    void receiver.complete(message);
  });
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
});

afterAll(async () => {
  await Promise.allSettled(devices.map((client) => client.close()));
  await eventLog?.close();
  await service?.close();
  await emulator?.stop();
});

describe('a device over MqttWs', () => {
  it('sends telemetry that reaches the Event Hub-compatible endpoint with its properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = await wsDevice(deviceId, key);
    await client.open();
    const message = new Message(JSON.stringify({ deviceId, temperature: 21.5 }));
    message.messageId = 'ws-telemetry-1';
    message.properties.add('temperatureAlert', 'false');
    await client.sendEvent(message);

    const event = await until('the telemetry event', () => eventLog.from(deviceId)[0]);
    expect(event.messageId).toBe('ws-telemetry-1');
    expect(event.properties).toMatchObject({ temperatureAlert: 'false' });
    // A JSON body comes back decoded by @azure/event-hubs.
    expect(event.body).toEqual({ deviceId, temperature: 21.5 });
  });

  it('receives and completes a C2D message the service sent over AmqpWs, whose feedback says Success', async () => {
    const { deviceId, key } = await createDevice();
    const client = await wsDevice(deviceId, key);
    const received: CommonMessage[] = [];
    client.on('message', (message: CommonMessage) => {
      received.push(message);
      void client.complete(message);
    });
    await client.open();
    const c2d = new Message('reboot');
    c2d.messageId = 'ws-c2d-1';
    c2d.ack = 'full';
    await service.send(deviceId, c2d);

    const [delivered] = await until('the C2D message at the device', () =>
      received.length > 0 ? received : undefined,
    );
    expect(dataText(delivered)).toBe('reboot');
    const record = await until('the Success feedback', () =>
      feedback.find((r) => r.originalMessageId === 'ws-c2d-1'),
    );
    expect(record).toMatchObject({ deviceId, statusCode: 'Success' });
  });

  it('is refused with UnauthorizedError for a wrong key', async () => {
    const { deviceId } = await createDevice();
    const wrongKey = Buffer.from('not the device key at all').toString('base64');
    const client = await wsDevice(deviceId, wrongKey);
    await expect(client.open()).rejects.toHaveProperty('name', 'UnauthorizedError');
  });
});

describe('a device over AmqpWs', () => {
  // Its scenarios (SAS key and token, X.509) run in device-transports.test.ts.
  it('is refused with UnauthorizedError for a wrong key (CBS put-token 401)', async () => {
    const { deviceId } = await createDevice();
    const wrongKey = Buffer.from('not the device key at all').toString('base64');
    const client = await amqpWsDeviceClient(emulator.connection.hostName, deviceId, wrongKey);
    devices.push(client);
    await expect(client.open()).rejects.toHaveProperty('name', 'UnauthorizedError');
  });

  it('with the right key sends telemetry the Event Hub-compatible endpoint receives', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpWsDeviceClient(emulator.connection.hostName, deviceId, key);
    devices.push(client);
    await client.open();
    const message = new Message('over AmqpWs');
    message.messageId = 'amqpws-telemetry-1';
    await client.sendEvent(message);
    const event = await until('the telemetry event', () => eventLog.from(deviceId)[0]);
    expect(event.messageId).toBe('amqpws-telemetry-1');
  });
});

/** Sends a raw upgrade request over TLS; resolves with everything the hub wrote before closing. */
function rawUpgrade(path: string, subprotocol: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: 'localhost',
      port: emulator.connection.ports.gateway,
      servername: 'localhost',
    });
    let text = '';
    socket.on('secureConnect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Protocol: ${subprotocol}\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', reject);
    // Resolves only once the hub has closed the connection (the proof that it does).
    socket.on('close', () => resolve(text));
  });
}

/** A raw WebSocket to the hub; `closed` resolves with the close code once the hub hangs up. */
async function openWebSocket(
  subprotocol: string,
): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(
    `wss://localhost:${emulator.connection.ports.gateway}/$iothub/websocket`,
    subprotocol,
  );
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed };
}

describe('WebSocket connections the hub does not serve', () => {
  it('answers 400 and closes the connection for an unknown subprotocol', async () => {
    const answer = await rawUpgrade('/$iothub/websocket', 'stomp');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).not.toMatch(/101 Switching Protocols/);
  });

  it('answers 404 and closes the connection for another path', async () => {
    const answer = await rawUpgrade('/devices/websocket', 'mqtt');
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
  });

  it('cuts an MQTT-over-WebSocket stream whose packet claims more than the limit', async () => {
    const { ws, closed } = await openWebSocket('mqtt');
    expect(ws.protocol).toBe('mqtt');
    // A CONNECT announcing 256 MiB - 1: the guard closes before any of it is buffered.
    ws.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    await expect(closed).resolves.toEqual(expect.any(Number));
  });

  it('closes an AMQP-over-WebSocket connection that sends nothing within the handshake deadline', async () => {
    const started = Date.now();
    const { ws, closed } = await openWebSocket('AMQPWSB10');
    expect(ws.protocol).toBe('AMQPWSB10');
    await expect(closed).resolves.toEqual(expect.any(Number));
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
