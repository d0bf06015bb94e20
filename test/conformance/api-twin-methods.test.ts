/**
 * The twin and direct-method routes against the local IoT Hub: the HTTP handlers, called
 * directly, with real settings pointing at an emulator process (the registry's twin calls and
 * `Client.invokeDeviceMethod` over HTTPS with `host:port`). A device connected with the device SDK
 * sees the desired properties the API writes and answers the methods it calls.
 */
import type { HttpResponseInit } from '@azure/functions';
import type { Client as DeviceClient, Twin } from 'azure-iot-device';
import { createApiServicesFromSettings, type ApiServices } from '../../lib/app/services';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { createMethodHandlers, type MethodHandlers } from '../../lib/methods/method-handlers';
import { loadSettings } from '../../lib/settings';
import { createTwinHandlers, type TwinHandlers } from '../../lib/twin/twin-handlers';
import { deviceConnectionString } from '../../lib/connection-string';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { apiRequest, contextLoggingTo, expectProblem, header, json } from '../support/http';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let services: ApiServices;
let twins: TwinHandlers;
let methods: MethodHandlers;
let device: DeviceClient;
const logs: string[] = [];
const deviceId = 'api-twin-1';
const offlineId = 'api-twin-offline';
const base = `http://localhost:7071/api/devices/${deviceId}`;
const context = () => contextLoggingTo(logs);

interface ApiTwin {
  etag: string;
  tags: Record<string, unknown>;
  desired: { version: number; properties: Record<string, unknown> };
  reported: { version: number; properties: Record<string, unknown> };
}

const getTwin = (id = deviceId) =>
  twins.get(apiRequest('GET', `${base}/twin`, { params: { deviceId: id } }), context());

const patchTwin = (body: unknown, ifMatch?: string, id = deviceId) =>
  twins.update(
    apiRequest('PATCH', `${base}/twin`, {
      body: JSON.stringify(body),
      headers: ifMatch ? { 'if-match': ifMatch } : {},
      params: { deviceId: id },
    }),
    context(),
  );

const callMethod = (methodName: string, body: unknown, id = deviceId): Promise<HttpResponseInit> =>
  methods.invoke(
    apiRequest('POST', `${base}/methods/${methodName}`, {
      body: JSON.stringify(body),
      params: { deviceId: id, methodName },
    }),
    context(),
  );

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  const { serviceConnectionString, hostName } = emulator.connection;
  services = createApiServicesFromSettings(
    loadSettings({
      IOTHUB_CONNECTION_STRING: serviceConnectionString,
      IOTHUB_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    }),
  );
  twins = createTwinHandlers(() => services);
  methods = createMethodHandlers(() => services);
  const registry = createRegistry(serviceConnectionString);
  const { key } = await registerDevice(registry, deviceId);
  await registerDevice(registry, offlineId);
  device = mqttDeviceClient(deviceConnectionString(hostName, deviceId, key));
  await device.open();
  device.onDeviceMethod('Echo', (request, response) => {
    void response.send(200, { echoed: request.payload as unknown });
  });
  device.onDeviceMethod('Sleep', () => undefined); // never answers
});

afterAll(async () => {
  await device?.close();
  await services?.close();
  await emulator?.stop();
});

describe('twin routes against the local IoT Hub', () => {
  let deviceTwin: Twin;

  it('a desired change written through the API reaches the device, and its report comes back', async () => {
    deviceTwin = await device.getTwin();
    const seen: Record<string, unknown>[] = [];
    deviceTwin.on('properties.desired', (delta: Record<string, unknown>) => seen.push(delta));

    const before = json<ApiTwin>(await getTwin());
    const response = await patchTwin(
      { desired: { telemetryIntervalSeconds: 7 }, tags: { site: 'north' } },
      `"${before.etag}"`,
    );
    expect(response.status).toBe(200);
    const after = json<ApiTwin>(response);
    expect(after.tags).toEqual({ site: 'north' });
    expect(after.desired.properties).toEqual({ telemetryIntervalSeconds: 7 });
    expect(after.desired.version).toBe(before.desired.version + 1);
    expect(header(response, 'ETag')).toBe(`"${after.etag}"`);
    expect(after.etag).not.toBe(before.etag);
    await until('the desired patch at the device', () =>
      seen.some((d) => d.telemetryIntervalSeconds === 7) ? true : undefined,
    );

    await new Promise<void>((resolve, reject) => {
      (
        deviceTwin.properties.reported as { update: (p: object, cb: (e?: Error) => void) => void }
      ).update({ telemetryIntervalSeconds: { value: 7, ac: 200 } }, (e) =>
        e ? reject(e) : resolve(),
      );
    });
    const read = json<ApiTwin>(await getTwin());
    expect(read.reported.properties).toMatchObject({
      telemetryIntervalSeconds: { value: 7, ac: 200 },
    });
  });

  it('answers 412 for a stale etag and 428 without If-Match, changing nothing', async () => {
    const current = json<ApiTwin>(await getTwin());
    await patchTwin({ desired: { a: 1 } }, `"${current.etag}"`);
    expectProblem(
      await patchTwin({ desired: { a: 2 } }, `"${current.etag}"`),
      412,
      'precondition-failed',
    );
    expectProblem(await patchTwin({ desired: { a: 3 } }), 428, 'precondition-required');
    expect(json<ApiTwin>(await getTwin()).desired.properties.a).toBe(1);
  });

  it('answers 413 when the merged desired properties would pass 32 KB, and 404 for an unknown device', async () => {
    // Each patch is under the limit; together they are over it: IoT Hub checks the merged twin.
    await patchTwin({ desired: { big1: 'x'.repeat(4000), big2: 'x'.repeat(4000) } }, '*');
    for (let i = 0; i < 3; i += 1) {
      const chunk = Object.fromEntries(
        Array.from({ length: 2 }, (_, j) => [`c${i}${j}`, 'y'.repeat(4000)]),
      );
      await patchTwin({ desired: chunk }, '*');
    }
    const over = await patchTwin(
      { desired: { last: 'z'.repeat(4000), last2: 'z'.repeat(4000) } },
      '*',
    );
    expectProblem(over, 413, 'payload-too-large');
    expect(json<ApiTwin>(await getTwin()).desired.properties).not.toHaveProperty('last');
    expectProblem(await getTwin('nobody'), 404, 'device-not-found');
  });
});

describe('method route against the local IoT Hub', () => {
  it("answers 200 with the device's status and payload", async () => {
    const response = await until('the method subscription', async () => {
      const r = await callMethod('Echo', { payload: { n: 1 }, responseTimeoutInSeconds: 5 });
      return r.status === 200 ? r : undefined;
    });
    expect(json(response)).toEqual({ status: 200, payload: { echoed: { n: 1 } } });
  });

  it('answers 404 device-offline for a device that is not connected', async () => {
    expectProblem(await callMethod('Echo', {}, offlineId), 404, 'device-offline');
  });

  it('answers 404 device-not-found for an unregistered device', async () => {
    expectProblem(await callMethod('Echo', {}, 'nobody'), 404, 'device-not-found');
  });

  it('answers 504 method-timeout when the device does not answer within the response timeout', async () => {
    const started = Date.now();
    const response = await callMethod('Sleep', { responseTimeoutInSeconds: 5 });
    expectProblem(response, 504, 'method-timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
  }, 20_000);
});
