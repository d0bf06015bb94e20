/**
 * The device identity API against the local IoT Hub: the HTTP handlers, called directly, with
 * real settings pointing at an emulator process (registry over HTTPS through `createRegistry`).
 * A device created through the API connects over MQTT with the connection string it returned.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { HttpRequest } from '@azure/functions';
import { createDeviceHandlers, type DeviceHandlers } from '../../lib/devices/device-handlers';
import { createApiServicesFromSettings, type ApiServices } from '../../lib/app/services';
import { loadSettings } from '../../lib/settings';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { mqttDeviceClient } from '../support/devices';
import { contextLoggingTo, json, problemType, readPages } from '../support/http';

let emulator: EmulatorInstance;
let services: ApiServices;
let handlers: DeviceHandlers;
const logs: string[] = [];
const base = 'http://localhost:7071/api/devices';

function settingsFor(serviceConnectionString: string) {
  return loadSettings({
    IOTHUB_CONNECTION_STRING: serviceConnectionString,
    IOTHUB_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  });
}

const context = () => contextLoggingTo(logs);

function request(
  method: string,
  url: string,
  init: { body?: unknown; headers?: Record<string, string>; deviceId?: string } = {},
): HttpRequest {
  return new HttpRequest({
    method,
    url,
    ...(init.body !== undefined ? { body: { string: JSON.stringify(init.body) } } : {}),
    headers: { 'content-type': 'application/json', ...init.headers },
    params: init.deviceId ? { deviceId: init.deviceId } : {},
  });
}

const get = (deviceId: string) =>
  handlers.get(request('GET', `${base}/${deviceId}`, { deviceId }), context());

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  services = createApiServicesFromSettings(
    settingsFor(emulator.connection.serviceConnectionString),
  );
  handlers = createDeviceHandlers(() => services);
});

afterAll(async () => {
  await services?.close();
  await emulator?.stop();
});

afterEach(() => {
  // Nothing the API logged may carry a key.
  for (const line of logs) expect(line).not.toMatch(/SharedAccessKey=[^[]/);
});

describe('device identity API on the local IoT Hub', () => {
  it('creates a device whose connection string works for the device SDK', async () => {
    const created = await handlers.create(
      request('POST', base, { body: { deviceId: 'api-dev-1' } }),
      context(),
    );
    expect(created.status).toBe(201);
    const device = json<{ connectionString: string; etag: string; primaryKey: string }>(created);
    expect(device.connectionString).toBe(
      `HostName=${emulator.connection.hostName};DeviceId=api-dev-1;SharedAccessKey=${device.primaryKey}`,
    );

    const client = mqttDeviceClient(device.connectionString);
    try {
      await client.open();
    } finally {
      await client.close();
    }

    const fetched = await get('api-dev-1');
    expect(fetched.status).toBe(200);
    const body = json(fetched);
    expect(body).toMatchObject({ deviceId: 'api-dev-1', status: 'enabled' });
    expect(fetched.body).not.toContain(device.primaryKey);
  });

  it('answers 409 for an existing device and leaves its keys alone', async () => {
    await handlers.create(request('POST', base, { body: { deviceId: 'api-dev-2' } }), context());
    const before = json(await get('api-dev-2')).etag;
    const again = await handlers.create(
      request('POST', base, { body: { deviceId: 'api-dev-2' } }),
      context(),
    );
    expect(again.status).toBe(409);
    expect(problemType(again)).toBe('device-already-exists');
    expect(json(await get('api-dev-2')).etag).toBe(before);
  });

  it('lists every device across pages with continuation tokens', async () => {
    for (let i = 0; i < 5; i++) {
      await handlers.create(request('POST', base, { body: { deviceId: `page-${i}` } }), context());
    }
    const pages = await readPages<{ deviceId: string; etag: string }>(
      (url) => handlers.list(request('GET', url), context()),
      base,
      2,
    );
    const items = pages.flatMap((page) => page.items);
    for (const item of items) {
      if (item.deviceId.startsWith('page-')) {
        // List rows carry the device etag, so they can drive a conditional PATCH.
        expect(item.etag).toBe(json(await get(item.deviceId)).etag);
      }
    }
    expect(pages.at(-1)?.continuationToken).toBeUndefined();
    const seen = items.map((item) => item.deviceId);
    expect(seen.filter((id) => id.startsWith('page-')).sort()).toEqual([
      'page-0',
      'page-1',
      'page-2',
      'page-3',
      'page-4',
    ]);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a continuation token it did not issue', async () => {
    const response = await handlers.list(
      request('GET', `${base}?continuationToken=forged`),
      context(),
    );
    expect(response.status).toBe(400);
    expect(problemType(response)).toBe('invalid-continuation-token');
  });

  it.each([
    ['a header injection', { v: 1, hub: '\r\nX: 1' }],
    ['a hub token the hub never issued', { v: 1, hub: 'not-a-hub-token' }],
  ])('answers a token carrying %s with 400, through the real SDK', async (_what, envelope) => {
    const token = Buffer.from(JSON.stringify(envelope)).toString('base64url');
    const response = await handlers.list(
      request('GET', `${base}?continuationToken=${token}`),
      context(),
    );
    expect(response.status).toBe(400);
    expect(problemType(response)).toBe('invalid-continuation-token');
  });

  it('honours If-Match: 412 on a stale etag, 200 on the current one', async () => {
    await handlers.create(request('POST', base, { body: { deviceId: 'api-dev-3' } }), context());
    const { etag } = json<{ etag: string }>(await get('api-dev-3'));
    const patch = (ifMatch: string, status: string) =>
      handlers.update(
        request('PATCH', `${base}/api-dev-3`, {
          deviceId: 'api-dev-3',
          body: { status, statusReason: 'test' },
          headers: { 'If-Match': ifMatch },
        }),
        context(),
      );
    const updated = await patch(`"${etag}"`, 'disabled');
    expect(updated.status).toBe(200);
    const after = json<{ etag: string; status: string }>(updated);
    expect(after.status).toBe('disabled');
    expect(after.etag).not.toBe(etag);

    const stale = await patch(`"${etag}"`, 'enabled');
    expect(stale.status).toBe(412);
    expect(problemType(stale)).toBe('precondition-failed');
    expect(json(await get('api-dev-3')).status).toBe('disabled');
  });

  it('deletes with 204, after which the device is 404', async () => {
    await handlers.create(request('POST', base, { body: { deviceId: 'api-dev-4' } }), context());
    const removed = await handlers.remove(
      request('DELETE', `${base}/api-dev-4`, { deviceId: 'api-dev-4' }),
      context(),
    );
    expect(removed.status).toBe(204);
    const missing = await get('api-dev-4');
    expect(missing.status).toBe(404);
    expect(problemType(missing)).toBe('device-not-found');
    const again = await handlers.remove(
      request('DELETE', `${base}/api-dev-4`, { deviceId: 'api-dev-4' }),
      context(),
    );
    expect(again.status).toBe(404);
  });

  it('answers 502 when the hub refuses the credentials, naming no key', async () => {
    const wrongKey = Buffer.alloc(32, 7).toString('base64');
    const badConnection = emulator.connection.serviceConnectionString.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${wrongKey}`,
    );
    const bad = createDeviceHandlers(() =>
      createApiServicesFromSettings(settingsFor(badConnection)),
    );
    const response = await bad.get(request('GET', `${base}/x`, { deviceId: 'x' }), context());
    expect(response.status).toBe(502);
    expect(problemType(response)).toBe('hub-access-denied');
    expect(response.body).not.toContain(wrongKey);
    expect(logs.join('\n')).not.toContain(wrongKey);
  });

  it('answers 503 when the hub is unreachable', async () => {
    const unreachable = emulator.connection.serviceConnectionString.replace(
      /HostName=[^;]+/,
      'HostName=localhost:1',
    );
    const down = createDeviceHandlers(() =>
      createApiServicesFromSettings(settingsFor(unreachable)),
    );
    const response = await down.get(request('GET', `${base}/x`, { deviceId: 'x' }), context());
    expect(response.status).toBe(503);
    expect(problemType(response)).toBe('hub-unavailable');
  });
});
