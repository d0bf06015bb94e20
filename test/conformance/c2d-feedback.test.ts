/**
 * Cloud-to-device messages end to end with delivery feedback: the official `azure-iothub`
 * `Client` sends over AMQP and reads `getFeedbackReceiver()`, a device on the official
 * `azure-iot-device` MQTT transport receives. The emulator closes partial feedback batches after
 * 100 ms (`--feedback-delay-ms`) instead of IoT Hub's ~15 s, on a manual clock: the tests move the
 * hub's time past TTLs and batch delays instead of waiting for them.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { Message, type Message as CommonMessage } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import type { Client as ServiceClient } from 'azure-iothub';
import { type Registry } from 'azure-iothub';
import type { FeedbackRecord } from '@iot-hub-functions/local-iothub';
import { c2dMessage, startC2dService, type C2dService } from '../support/c2d-service';
import type { EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';
import {
  dataText,
  mqttDeviceClient,
  openCompleting,
  registerDevice,
  type TestDevice,
} from '../support/devices';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let hub: C2dService;
const devices: DeviceClient[] = [];
let nextDevice = 0;

function feedbackFor(messageId: string): FeedbackRecord | undefined {
  return hub.feedbackFor(messageId);
}

function feedbackArrived(messageId: string): Promise<FeedbackRecord> {
  return hub.feedbackArrived(messageId);
}

function createDevice(): Promise<TestDevice> {
  nextDevice += 1;
  return registerDevice(registry, `c2d-feedback-${nextDevice}`);
}

/** A connected device that completes (PUBACKs) everything and remembers what it got. */
function connectedDevice(deviceId: string, key: string): Promise<CommonMessage[]> {
  const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  devices.push(client);
  return openCompleting(client);
}

beforeAll(async () => {
  hub = await startC2dService({ manualClock: true });
  ({ emulator, registry, service } = hub);
});

afterAll(async () => {
  await Promise.allSettled(devices.map((client) => client.close()));
  await hub?.stop();
});

describe('C2D feedback through getFeedbackReceiver', () => {
  it('reports Expired with the original message id when the TTL passes on an offline device', async () => {
    const { deviceId } = await createDevice();
    const clock = emulator.clock!;
    // Ten minutes of hub time: it passes only because the test moves the clock.
    const expiry = (await clock.now()) + 600_000;
    const message = c2dMessage('expiring-1', 'full');
    message.expiryTimeUtc = expiry;
    await service.send(deviceId, message);
    await clock.advance(600_000);
    const record = await feedbackArrived('expiring-1');
    expect(record).toMatchObject({ deviceId, statusCode: 'Expired' });
    // Stamped in the hub's time, ten minutes ahead of the wall clock.
    expect(Date.parse(record.enqueuedTimeUtc)).toBeGreaterThanOrEqual(expiry);
  });

  it('reports Success for positive and full acks and nothing for negative once the device completes', async () => {
    const { deviceId, key } = await createDevice();
    const received = await connectedDevice(deviceId, key);
    // In order: a negative record, if wrongly produced, would arrive no later than the others.
    await service.send(deviceId, c2dMessage('ack-negative', 'negative'));
    await service.send(deviceId, c2dMessage('ack-positive', 'positive'));
    await service.send(deviceId, c2dMessage('ack-full', 'full'));
    await service.send(deviceId, c2dMessage('ack-none', 'none'));
    const positive = await feedbackArrived('ack-positive');
    const full = await feedbackArrived('ack-full');
    expect(positive).toMatchObject({ deviceId, statusCode: 'Success' });
    expect(full).toMatchObject({ deviceId, statusCode: 'Success' });
    await until('all four messages at the device', () =>
      received.length >= 4 ? received : undefined,
    );
    expect(feedbackFor('ack-negative')).toBeUndefined();
    expect(received.map((m) => m.messageId)).toEqual([
      'ack-negative',
      'ack-positive',
      'ack-full',
      'ack-none',
    ]);
  });

  it('delivers UUID ids (sent as AMQP uuid), content type, encoding and properties to the device', async () => {
    const { deviceId, key } = await createDevice();
    const received = await connectedDevice(deviceId, key);
    const message = new Message(JSON.stringify({ command: 'reboot' }));
    message.messageId = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
    message.correlationId = '7d444840-9dc0-41d1-b245-5ffdce74fad2';
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    message.properties.add('priority', 'high&urgent');
    await service.send(deviceId, message);
    const [delivered] = await until('the message at the device', () =>
      received.length > 0 ? received : undefined,
    );
    expect(delivered?.messageId).toBe('1b4e28ba-2fa1-41d2-883f-0016d3cca427');
    expect(delivered?.correlationId).toBe('7d444840-9dc0-41d1-b245-5ffdce74fad2');
    expect(delivered?.contentType).toBe('application/json');
    expect(delivered?.contentEncoding).toBe('utf-8');
    expect(delivered?.properties.getValue('priority')).toBe('high&urgent');
    expect(JSON.parse(dataText(delivered))).toEqual({ command: 'reboot' });
  });
});
