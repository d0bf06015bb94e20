/**
 * Devices over AMQP, what is particular to it: authentication and link authorization with the
 * unmodified `azure-iot-device` client and `azure-iot-device-amqp` transport (`Amqp`), SAS keys.
 * The transport dials `amqps://<HostName>` and honours a `host:port` HostName, so no seam is
 * needed. Telemetry, C2D (complete, reject, abandon), twin and methods over AMQP run with the
 * other transports in `device-transports.test.ts`.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { Message, NoRetry } from 'azure-iot-common';
import { Amqp as AmqpBase } from 'azure-iot-amqp-base';
import { Client as DeviceClient, SharedAccessSignature } from 'azure-iot-device';
import { Amqp } from 'azure-iot-device-amqp';
import type { Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { registerDevice, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
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

function errorOf(work: Promise<unknown>): Promise<Error | undefined> {
  return work.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
}

type Done<T> = (error?: Error | null, result?: T) => void;

function call<T>(run: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    run((error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

/**
 * The SDK's own AMQP layer (what `Amqp` is built on), authenticated with `device`'s token, to
 * attach links the device client never would. The caller disconnects it.
 */
async function rawDeviceConnection(device: TestDevice): Promise<AmqpBase> {
  const amqp = new AmqpBase(false);
  const { hostName } = emulator.connection;
  await call((done) => amqp.connect({ uri: `amqps://${hostName}`, userAgentString: 'test' }, done));
  await call((done) => amqp.initializeCBS(done));
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const token = SharedAccessSignature.create(hostName, device.deviceId, device.key, expiry);
  const audience = encodeURIComponent(`${hostName}/devices/${device.deviceId}`);
  await call((done) => amqp.putToken(audience, token.toString(), done));
  return amqp;
}

/**
 * Attaches a sender on `address` and returns the error the hub answers with. The hub answers
 * the attach and detaches at once with the error, as IoT Hub does; the SDK surfaces that as a
 * disconnect.
 */
async function refusalOf(amqp: AmqpBase, address: string): Promise<unknown> {
  const disconnected: unknown[] = [];
  amqp.setDisconnectHandler((error) => disconnected.push(error));
  await call((done) => amqp.attachSenderLink(address, {}, done)).catch((error: unknown) =>
    disconnected.push(error),
  );
  return until(`the refusal of ${address}`, () => disconnected[0]);
}

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await emulator?.stop();
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
    const amqp = await rawDeviceConnection(mine);
    try {
      await call((done) =>
        amqp.attachSenderLink(`/devices/${mine.deviceId}/messages/events`, {}, done),
      );
      expect(await refusalOf(amqp, `/devices/${other.deviceId}/messages/events`)).toMatchObject({
        condition: 'amqp:unauthorized-access',
      });
    } finally {
      await call((done) => amqp.disconnect(done));
    }
  });

  it('a device token opens no service link: sending C2D is refused', async () => {
    const amqp = await rawDeviceConnection(await createDevice());
    try {
      expect(await refusalOf(amqp, '/messages/devicebound')).toMatchObject({
        condition: 'amqp:unauthorized-access',
      });
    } finally {
      await call((done) => amqp.disconnect(done));
    }
  });

  it('disabling a connected device closes its links, and it cannot come back', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    // Listening for C2D attaches a link; links are what the hub closes.
    client.on('message', () => undefined);
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

describe('telemetry limits over Amqp', () => {
  it('refuses a message over 256 KB with MessageTooLargeError; the link keeps working', async () => {
    const { deviceId, key } = await createDevice();
    const client = await amqpDevice(deviceId, key);
    const error = await errorOf(client.sendEvent(new Message(Buffer.alloc(256 * 1024 + 1))));
    expect(error?.name).toBe('MessageTooLargeError');
    await client.sendEvent(new Message('small enough'));
  });
});
