/**
 * Devices over MQTT, driven by the official device SDK (`azure-iot-device` with
 * `azure-iot-device-mqtt`) against the emulator process, with the official service SDKs
 * (`azure-iothub` Registry and AMQP Client, `@azure/event-hubs`) on the other side.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both).
 */
import { NoRetry, type Message as CommonMessage } from 'azure-iot-common';
import { Client as DeviceClient, Message, SharedAccessSignature } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';
import { dataText, mqttDeviceClient, registerDevice, type TestDevice } from '../support/devices';
import { collectEvents, type EventLog } from '../support/events';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let eventLog: EventLog;
const openClients: DeviceClient[] = [];
let nextDevice = 0;

function createDevice(status: 'enabled' | 'disabled' = 'enabled'): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `mqtt-device-${nextDevice}`, status);
}

function deviceClient(deviceId: string, key: string): DeviceClient {
  const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  openClients.push(client);
  return client;
}

function bodyText(body: unknown): string {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  return typeof body === 'string' ? body : JSON.stringify(body);
}

beforeAll(async () => {
  // A manual clock: the feedback batch delay passes by moving the hub's time, not by waiting.
  emulator = await startEmulator({
    inMemory: true,
    manualClock: true,
    args: ['--feedback-delay-ms', '100'],
  });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  await service.open();
  eventLog = collectEvents(emulator.connection.eventsConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(openClients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await eventLog?.close();
  await service?.close();
  await emulator?.stop();
});

describe('device authentication', () => {
  it('connects with the device key and shows the device as connected', async () => {
    const { deviceId, key } = await createDevice();
    await deviceClient(deviceId, key).open();
    const device = await until('Connected state', async () => {
      const { responseBody } = await registry.get(deviceId);
      // IoT Hub sends 'Connected' (the SDK's type says lower case).
      return String(responseBody.connectionState).toLowerCase() === 'connected'
        ? responseBody
        : undefined;
    });
    expect(device.deviceId).toBe(deviceId);
  });

  it('refuses a wrong key and an unknown device with UnauthorizedError', async () => {
    const { deviceId } = await createDevice();
    const wrongKey = Buffer.from('not the device key at all').toString('base64');
    await expect(deviceClient(deviceId, wrongKey).open()).rejects.toHaveProperty(
      'name',
      'UnauthorizedError',
    );
    await expect(deviceClient('no-such-device', wrongKey).open()).rejects.toHaveProperty(
      'name',
      'UnauthorizedError',
    );
  });

  it('refuses an expired token', async () => {
    const { deviceId, key } = await createDevice();
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    const token = SharedAccessSignature.create(
      emulator.connection.hostName,
      deviceId,
      key,
      hourAgo,
    );
    const client = DeviceClient.fromSharedAccessSignature(token.toString(), Mqtt);
    client.setRetryPolicy(new NoRetry());
    openClients.push(client);
    await expect(client.open()).rejects.toHaveProperty('name', 'UnauthorizedError');
  });

  it('refuses a disabled device as unavailable (CONNACK 3)', async () => {
    const { deviceId, key } = await createDevice('disabled');
    await expect(deviceClient(deviceId, key).open()).rejects.toHaveProperty(
      'name',
      'ServiceUnavailableError',
    );
  });

  it('drops a live connection when the device is disabled', async () => {
    const { deviceId, key } = await createDevice();
    const client = deviceClient(deviceId, key);
    await client.open();
    const disconnected = new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
    const { responseBody } = await registry.get(deviceId);
    await registry.update({ ...responseBody, status: 'disabled' });
    await disconnected;
    await expect(client.sendEvent(new Message('after disable'))).rejects.toBeDefined();
  });
});

describe('telemetry', () => {
  it('reaches the Event Hub-compatible endpoint with ids, content type, encoding and escaped properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = deviceClient(deviceId, key);
    await client.open();
    const message = new Message(JSON.stringify({ deviceId, windSpeed: 12.5 }));
    message.messageId = 'msg id/1&2=3';
    message.correlationId = 'corr-é';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('a b&c=d/é', 'v%l u&e=/é');
    message.properties.add('temperatureAlert', 'true');
    await client.sendEvent(message);

    const event = await until('the telemetry event', () => eventLog.from(deviceId)[0]);
    expect(event.messageId).toBe('msg id/1&2=3');
    expect(event.correlationId).toBe('corr-é');
    expect(event.contentType).toBe('application/json');
    expect(event.getRawAmqpMessage().properties?.contentEncoding).toBe('utf-8');
    expect(event.properties).toMatchObject({ 'a b&c=d/é': 'v%l u&e=/é', temperatureAlert: 'true' });
    expect(JSON.parse(bodyText(event.body))).toEqual({ deviceId, windSpeed: 12.5 });
    expect(event.systemProperties?.['iothub-connection-auth-method']).toContain('"sas"');
  });

  it('keeps each device’s messages apart and in order', async () => {
    const { deviceId, key } = await createDevice();
    const client = deviceClient(deviceId, key);
    await client.open();
    for (let i = 0; i < 5; i += 1) await client.sendEvent(new Message(`reading ${i}`));
    const mine = await until('five events', () => {
      const found = eventLog.from(deviceId);
      return found.length >= 5 ? found : undefined;
    });
    expect(mine.map((e) => bodyText(e.body))).toEqual([0, 1, 2, 3, 4].map((i) => `reading ${i}`));
  });
});

describe('cloud-to-device messages', () => {
  function c2dMessage(body: string): Message {
    const message = new Message(body);
    message.messageId = `c2d ${body}`;
    message.correlationId = 'corr/1';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    // IoT Hub allows only token characters in C2D properties; these still need URL-encoding.
    message.properties.add("k%e&y+#'", 'v$a&l|u^e%');
    return message;
  }

  function collect(client: DeviceClient): CommonMessage[] {
    const received: CommonMessage[] = [];
    client.on('message', (message: CommonMessage) => {
      received.push(message);
    });
    return received;
  }

  it('delivers a message sent while the device is connected, with its properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = deviceClient(deviceId, key);
    const received = collect(client);
    await client.open();
    await service.send(deviceId, c2dMessage('live'));
    const [message] = await until('the C2D message', () =>
      received.length > 0 ? received : undefined,
    );
    expect(message?.messageId).toBe('c2d live');
    expect(message?.correlationId).toBe('corr/1');
    expect(message?.contentType).toBe('application/json');
    expect(message?.contentEncoding).toBe('utf-8');
    expect(dataText(message)).toBe('live');
    expect(message?.properties.getValue("k%e&y+#'")).toBe('v$a&l|u^e%');
  });

  it('queues messages for a device that never connected and delivers them in order on subscribe', async () => {
    const { deviceId, key } = await createDevice();
    await service.send(deviceId, c2dMessage('first'));
    await service.send(deviceId, c2dMessage('second'));
    const client = deviceClient(deviceId, key);
    const received = collect(client);
    await client.open();
    const messages = await until('both queued messages', () =>
      received.length >= 2 ? received : undefined,
    );
    expect(messages.map(dataText)).toEqual(['first', 'second']);
  });

  it('treats the device’s PUBACK as completion: Success feedback, nothing redelivered', async () => {
    const { deviceId, key } = await createDevice();
    const feedback: unknown[] = [];
    const receiver = (await service.getFeedbackReceiver()).result;
    receiver.on('message', (message: CommonMessage) => {
      const records: unknown = JSON.parse(dataText(message));
      if (Array.isArray(records)) feedback.push(...(records as unknown[]));
      receiver.complete(message, () => {});
    });
    const message = c2dMessage('acked');
    message.ack = 'full';
    message.messageId = `ack-${deviceId}`;
    await service.send(deviceId, message);

    const first = deviceClient(deviceId, key);
    const received = collect(first);
    await first.open();
    await until('the message', () => (received.length > 0 ? received : undefined));
    const record = await until('Success feedback', async () => {
      await emulator.clock!.advance(100);
      return feedback.find(
        (r) =>
          typeof r === 'object' &&
          r !== null &&
          (r as { originalMessageId?: unknown }).originalMessageId === `ack-${deviceId}`,
      );
    });
    expect(record).toMatchObject({ deviceId, statusCode: 'Success' });
    await first.close();

    // A new connection gets nothing: the message was completed, not just delivered.
    const second = deviceClient(deviceId, key);
    const again = collect(second);
    await second.open();
    await service.send(deviceId, c2dMessage('marker'));
    const marker = await until('the marker message', () => (again.length > 0 ? again : undefined));
    expect(marker.map(dataText)).toEqual(['marker']);
  });
});

describe('reconnection', () => {
  it('the SDK subscribes again after its connection is taken over, and C2D keeps flowing', async () => {
    const { deviceId, key } = await createDevice();
    // The default retry policy this time: the SDK reconnects on its own.
    const client = DeviceClient.fromConnectionString(
      emulator.connection.deviceConnectionString(deviceId, key),
      Mqtt,
    );
    openClients.push(client);
    const received: string[] = [];
    client.on('message', (message: CommonMessage) => {
      received.push(dataText(message));
    });
    await client.open();

    // Another connection with the same client id takes over, then leaves.
    const intruder = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
    await intruder.open();
    await intruder.close();

    // Sessions are clean on the hub: only a fresh SUBSCRIBE from the SDK brings this one back.
    await service.send(deviceId, new Message('after the takeover'));
    await until('the message after reconnecting', () =>
      received.includes('after the takeover') ? received : undefined,
    );
  });
});

describe('device twin', () => {
  it('answers get and stores reported properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = deviceClient(deviceId, key);
    await client.open();
    const twin = await client.getTwin();
    const reported = twin.properties.reported as unknown as {
      update(patch: object, done: (error?: Error) => void): void;
    };
    await new Promise<void>((resolve, reject) =>
      reported.update({ firmware: '1.2.3' }, (error?: Error) =>
        error ? reject(error) : resolve(),
      ),
    );
    const again = await client.getTwin();
    expect(again.properties.reported).toMatchObject({ firmware: '1.2.3' });
  });
});
