/**
 * IoT Hub's cloud-to-device message limits at the local hub, driven by the official
 * `azure-iothub` `Client` (AMQP) and an `azure-iot-device` MQTT device: the 64 KB limit counts the
 * body, the system property values and the property names and values; property text outside
 * IoT Hub's token characters is refused; and a queued message MQTT cannot carry (its URL-encoded
 * properties overflow the 65,535-byte topic) is dead-lettered alone, without costing the device
 * its connection or holding up the message behind it.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { Message } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import type { Client as ServiceClient } from 'azure-iothub';
import { type Registry } from 'azure-iothub';
import { startC2dService, type C2dService } from '../support/c2d-service';
import type { EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';
import { dataText, mqttDeviceClient, openCompleting, registerDevice } from '../support/devices';

const limit = 64 * 1024;

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let hub: C2dService;
const devices: DeviceClient[] = [];
let nextDevice = 0;

async function createDevice(): Promise<{ deviceId: string; key: string }> {
  nextDevice += 1;
  return registerDevice(registry, `c2d-limits-${nextDevice}`);
}

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-Error: ${String(error)}`);
  }
  throw new Error('expected a failure, got success');
}

/**
 * A message whose counted size is exactly `size`: body + message id + `to` + one property
 * (`note` = 100 characters).
 */
function messageOfSize(deviceId: string, messageId: string, size: number): Message {
  const to = `/devices/${deviceId}/messages/devicebound`;
  const note = 'n'.repeat(100);
  const bodyBytes = size - messageId.length - to.length - 'note'.length - note.length;
  const message = new Message(Buffer.alloc(bodyBytes, 0x61));
  message.messageId = messageId;
  message.properties.add('note', note);
  return message;
}

beforeAll(async () => {
  hub = await startC2dService({ manualClock: true });
  ({ emulator, registry, service } = hub);
});

afterAll(async () => {
  await Promise.allSettled(devices.map((client) => client.close()));
  await hub?.stop();
});

describe('C2D limits at the local IoT Hub', () => {
  it('delivers a message of exactly 64 KB counting body, ids and properties', async () => {
    const { deviceId, key } = await createDevice();
    const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
    devices.push(client);
    const received = await openCompleting(client);
    const sent = messageOfSize(deviceId, 'at-limit', limit);
    await service.send(deviceId, sent);
    const [message] = await until('the message at the device', () =>
      received.length > 0 ? received : undefined,
    );
    expect(message?.messageId).toBe('at-limit');
    expect(message?.properties.getValue('note')).toBe('n'.repeat(100));
    expect(dataText(message)).toBe(dataText(sent));
  });

  it('refuses one byte more with MessageTooLargeError, counting the properties', async () => {
    const { deviceId } = await createDevice();
    const error = await failure(
      service.send(deviceId, messageOfSize(deviceId, 'past-limit', limit + 1)),
    );
    expect(error.name).toBe('MessageTooLargeError');
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.cloudToDeviceMessageCount).toBe(0);
  });

  it('refuses a property value outside the allowed characters', async () => {
    const { deviceId } = await createDevice();
    const message = new Message('x');
    message.properties.add('note', 'has a space');
    await failure(service.send(deviceId, message));
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.cloudToDeviceMessageCount).toBe(0);
  });

  it('dead-letters a message MQTT cannot carry and delivers the one behind it on the same connection', async () => {
    const { deviceId, key } = await createDevice();
    // Under 64 KB, but `%` triples when URL-encoded into the topic: 90,000 bytes > 65,535.
    const unsendable = new Message('too long a topic');
    unsendable.messageId = 'unsendable';
    unsendable.ack = 'full';
    unsendable.properties.add('pad', '%'.repeat(30_000));
    await service.send(deviceId, unsendable);
    const good = new Message('good');
    good.messageId = 'good-after';
    good.ack = 'full';
    await service.send(deviceId, good);

    const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
    devices.push(client);
    let disconnects = 0;
    client.on('disconnect', () => (disconnects += 1));
    const received = await openCompleting(client);

    const dead = await hub.feedbackArrived('unsendable');
    expect(dead).toMatchObject({ deviceId, statusCode: 'DeliveryCountExceeded' });
    expect(dead.description).toMatch(/MQTT.*65535/);
    const delivered = await hub.feedbackArrived('good-after');
    expect(delivered.statusCode).toBe('Success');
    expect(received.map((m) => m.messageId)).toEqual(['good-after']);
    expect(disconnects).toBe(0);
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.connectionState).toBe('Connected');
    expect(responseBody.cloudToDeviceMessageCount).toBe(0);
  });
});
