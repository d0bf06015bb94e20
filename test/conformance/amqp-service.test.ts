/**
 * The service surface over AMQP, driven by the official `azure-iothub` `Client` (1.16.6) against
 * the emulator process: open (CBS put-token), sends and the typed errors the SDK derives from our
 * rejections, and a wrong key failing fast.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both: the AMQP client takes no `ca` option).
 */
import { Message } from 'azure-iot-common';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { registerDevice } from '../support/devices';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
let nextDevice = 0;

async function createDevice(): Promise<string> {
  nextDevice += 1;
  return (await registerDevice(registry, `amqp-service-${nextDevice}`)).deviceId;
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

beforeAll(async () => {
  // Durable mode here (c2d-feedback.test.ts runs in memory): an accepted send is on disk.
  emulator = await startEmulator();
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
});

afterAll(async () => {
  await service?.close();
  await emulator?.stop();
});

describe('azure-iothub Client over AMQP', () => {
  it('opens (CBS put-token with the connection string policy) and sends to a registered device', async () => {
    await service.open();
    const deviceId = await createDevice();
    const message = new Message('hello');
    message.messageId = 'first-message';
    await expect(service.send(deviceId, message)).resolves.toBeDefined();
  });

  it('reports DeviceNotFoundError for an unknown device', async () => {
    const error = await failure(service.send('no-such-device', new Message('lost')));
    expect(error.name).toBe('DeviceNotFoundError');
  });

  it('queues 50 messages for an offline device and refuses the 51st with DeviceMaximumQueueDepthExceededError', async () => {
    const deviceId = await createDevice();
    for (let i = 0; i < 50; i += 1) {
      await service.send(deviceId, new Message(`message ${i}`));
    }
    const error = await failure(service.send(deviceId, new Message('one too many')));
    expect(error.name).toBe('DeviceMaximumQueueDepthExceededError');
    // Real IoT Hub reports the queue in the registry too.
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.cloudToDeviceMessageCount).toBe(50);
  });

  it('refuses a body over 64 KiB with MessageTooLargeError', async () => {
    const deviceId = await createDevice();
    const error = await failure(service.send(deviceId, new Message(Buffer.alloc(64 * 1024 + 1))));
    expect(error.name).toBe('MessageTooLargeError');
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.cloudToDeviceMessageCount).toBe(0);
  });

  it('gives a file notification receiver that never fires (no uploads here) and stays usable', async () => {
    const { result: receiver } = await service.getFileNotificationReceiver();
    expect(typeof receiver.on).toBe('function');
    const deviceId = await createDevice();
    await expect(service.send(deviceId, new Message('still fine'))).resolves.toBeDefined();
  });

  it('serves the same surface on the standard AMQPS listener', async () => {
    const amqpPort = emulator.connection.ports.amqp;
    if (amqpPort === null) throw new Error('the emulator serves no AMQPS port');
    const connectionString = emulator.connection.serviceConnectionString.replace(
      /HostName=([^;:]+):\d+/,
      `HostName=$1:${amqpPort}`,
    );
    const direct = ServiceClient.fromConnectionString(connectionString);
    try {
      await direct.open();
      const error = await failure(direct.send('nobody-here', new Message('lost')));
      expect(error.name).toBe('DeviceNotFoundError');
    } finally {
      await direct.close();
    }
  });

  // azure-iothub 1.16.6 wraps the CBS UnauthorizedError of `open()` in a plain Error ("Could not
  // connect") with the original as `amqpError`, exactly as against Azure; the name 'Error' is
  // not retried by the default policy, so it fails fast.
  it('refuses a wrong key: put-token 401 surfaces as UnauthorizedError, without retrying', async () => {
    const wrongKey = Buffer.from('certainly not the policy key').toString('base64');
    const connectionString = emulator.connection.serviceConnectionString.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${wrongKey}`,
    );
    const intruder = ServiceClient.fromConnectionString(connectionString);
    try {
      const error = await failure(intruder.open());
      expect(error.message).toBe('AMQP Transport: Could not connect');
      expect((error as Error & { amqpError?: Error }).amqpError?.name).toBe('UnauthorizedError');
      expect(emulator.output()).toContain('put-token refused (401)');
      expect(emulator.output()).not.toContain(wrongKey);
    } finally {
      await intruder.close();
    }
  });
});

// Last in the file: it kills this file's emulator (and starts a new one).
describe('durability', () => {
  it('keeps accepted sends across kill -9 and a restart on the same data folder', async () => {
    const deviceId = await createDevice();
    await service.send(deviceId, new Message('survives 1'));
    await service.send(deviceId, new Message('survives 2'));
    await service.close();
    await emulator.stop('SIGKILL');
    emulator = await startEmulator({ dataDir: emulator.dataDir });
    registry = createRegistry(emulator.connection.serviceConnectionString);
    service = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
    const { responseBody } = await registry.get(deviceId);
    expect(responseBody.cloudToDeviceMessageCount).toBe(2);
  });
});
