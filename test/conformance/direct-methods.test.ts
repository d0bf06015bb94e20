/**
 * Direct methods through the unmodified official SDKs: the service calls
 * `Client.invokeDeviceMethod` (REST, through `createServiceClient` for `host:port`), the device
 * answers in `onDeviceMethod` (MQTT). Online, offline, late-connecting, silent and oversized cases
 * answer as IoT Hub does.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import type {
  Client as DeviceClient,
  DeviceMethodRequest,
  DeviceMethodResponse,
} from 'azure-iot-device';
import { Client as ServiceClient, type Registry } from 'azure-iothub';
import { createRegistry, createServiceClient } from '../../lib/iothub/registry-agent';
import { mqttDeviceClient, registerDevice, type TestDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { failure } from '../support/registry-rest';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
let service: ServiceClient;
const clients: DeviceClient[] = [];
let counter = 0;

const newDevice = (): Promise<TestDevice> =>
  registerDevice(registry, `method-${++counter}-${Date.now().toString(36)}`);

async function connect(device: TestDevice): Promise<DeviceClient> {
  const client = mqttDeviceClient(
    emulator.connection.deviceConnectionString(device.deviceId, device.key),
  );
  clients.push(client);
  await client.open();
  return client;
}

/** Registers a handler and waits until the SDK has subscribed to method requests. */
async function answering(
  client: DeviceClient,
  name: string,
  handler: (request: DeviceMethodRequest, response: DeviceMethodResponse) => void,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    client.onDeviceMethod(name, handler);
    // The SDK subscribes asynchronously; a twin round trip on the same connection comes after it.
    void client.getTwin().then(() => resolve(), reject);
  });
}

function send(response: DeviceMethodResponse, status: number, payload: unknown): Promise<void> {
  return new Promise((resolve, reject) =>
    response.send(status, payload, (error?: Error) => (error ? reject(error) : resolve())),
  );
}

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  service = createServiceClient(emulator.connection.serviceConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await emulator?.stop();
});

test('an online device answers: 200 with its status and payload', async () => {
  const device = await newDevice();
  const client = await connect(device);
  const seen: unknown[] = [];
  await answering(client, 'SetTelemetryInterval', (request, response) => {
    seen.push(request.payload);
    void send(response, 201, { applied: request.payload });
  });
  const { result } = await service.invokeDeviceMethod(device.deviceId, {
    methodName: 'SetTelemetryInterval',
    payload: { seconds: 7 },
  });
  expect(result).toEqual({ status: 201, payload: { applied: { seconds: 7 } } });
  expect(seen).toEqual([{ seconds: 7 }]);
});

test('a device that is not connected answers 404 DeviceNotOnline; an unknown device DeviceNotFound', async () => {
  const device = await newDevice();
  const offline = await failure(
    service.invokeDeviceMethod(device.deviceId, { methodName: 'anything', payload: null }),
  );
  expect(offline.response?.statusCode).toBe(404);
  expect(offline.responseBody).toContain('ErrorCode:DeviceNotOnline;');
  const missing = await failure(
    service.invokeDeviceMethod('no-such-device', { methodName: 'anything', payload: null }),
  );
  expect(missing.name).toBe('DeviceNotFoundError');
});

test('with a connect timeout the call waits for the device to come online', async () => {
  const device = await newDevice();
  const call = service.invokeDeviceMethod(device.deviceId, {
    methodName: 'ping',
    payload: 'hello',
    responseTimeoutInSeconds: 10,
    connectTimeoutInSeconds: 20,
  });
  const client = await connect(device);
  await answering(client, 'ping', (request, response) => void send(response, 200, request.payload));
  expect((await call).result).toEqual({ status: 200, payload: 'hello' });
});

test('no answer in time: 504 GatewayTimeout; the late answer is ignored and the device stays usable', async () => {
  const device = await newDevice();
  const client = await connect(device);
  const held: DeviceMethodResponse[] = [];
  await answering(client, 'slow', (_request, response) => held.push(response));
  await answering(client, 'fast', (_request, response) => void send(response, 200, 'ok'));
  const error = await failure(
    // The SDK's own HTTP timeout is response + connect timeout: 2 s of slack lets the hub answer.
    service.invokeDeviceMethod(device.deviceId, {
      methodName: 'slow',
      payload: null,
      responseTimeoutInSeconds: 5,
      connectTimeoutInSeconds: 2,
    }),
  );
  expect(error.name).toBe('GatewayTimeoutError');
  expect(error.response?.statusCode).toBe(504);
  expect(error.responseBody).toContain('ErrorCode:GatewayTimeout;');

  const late = await until('the held request', () => held[0]);
  await send(late, 200, 'too late');
  const { result } = await service.invokeDeviceMethod(device.deviceId, {
    methodName: 'fast',
    payload: null,
  });
  expect(result).toEqual({ status: 200, payload: 'ok' });
}, 30_000);

test('a payload over 128 KB is refused with 413 before it reaches the device', async () => {
  const device = await newDevice();
  const client = await connect(device);
  const calls: unknown[] = [];
  await answering(client, 'big', (request, response) => {
    calls.push(request.payload);
    void send(response, 200, null);
  });
  const error = await failure(
    service.invokeDeviceMethod(device.deviceId, {
      methodName: 'big',
      payload: 'x'.repeat(129 * 1024),
    }),
  );
  expect(error.response?.statusCode).toBe(413);
  const { result } = await service.invokeDeviceMethod(device.deviceId, {
    methodName: 'big',
    payload: 'x'.repeat(120 * 1024),
  });
  expect(result.status).toBe(200);
  expect(calls).toHaveLength(1);
});

test.each([
  ['a response timeout under 5 s', { responseTimeoutInSeconds: 3 }],
  ['a response timeout over 300 s', { responseTimeoutInSeconds: 301 }],
  ['a connect timeout over 300 s', { connectTimeoutInSeconds: 301 }],
])('%s is refused with 400', async (_name, timeouts) => {
  const device = await newDevice();
  const error = await failure(
    service.invokeDeviceMethod(device.deviceId, { methodName: 'x', payload: null, ...timeouts }),
  );
  expect(error.response?.statusCode).toBe(400);
});

test('without createServiceClient the SDK cannot reach host:port (the reason it exists)', async () => {
  const device = await newDevice();
  const plain = ServiceClient.fromConnectionString(emulator.connection.serviceConnectionString);
  const error = await failure(
    plain.invokeDeviceMethod(device.deviceId, { methodName: 'x', payload: null }),
  );
  expect(`${error.message} ${String((error as { code?: unknown }).code)}`).toMatch(
    /ENOTFOUND|EAI_AGAIN/,
  );
});
