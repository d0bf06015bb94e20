import { InvocationContext } from '@azure/functions';
import { validateHeaderValue } from 'node:http';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { errors } from 'azure-iot-common';
import { createDeviceHandlers } from '../../../../lib/devices/device-handlers';
import { createApiServices } from '../../../../lib/app/services';
import type { HubDevice, HubQuery, RegistryClient } from '../../../../lib/iothub/clients';
import {
  apiRequest as request,
  expectProblem,
  header,
  json,
  readPages,
} from '../../../support/http';

const hubHost = 'myhub.azure-devices.net';
const base = 'https://app.example/api/devices';

/** An in-memory registry with the behaviour of IoT Hub's that the API relies on. */
class FakeRegistry implements RegistryClient {
  devices = new Map<string, HubDevice>();
  calls: string[] = [];
  failWith: Error | undefined;
  private version = 0;

  private check(call: string): void {
    this.calls.push(call);
    if (this.failWith) throw this.failWith;
  }

  private etag(): string {
    this.version += 1;
    return `etag-${this.version}`;
  }

  create(device: HubDevice): Promise<HubDevice> {
    this.check('create');
    if (this.devices.has(device.deviceId)) {
      return Promise.reject(new errors.DeviceAlreadyExistsError('exists'));
    }
    const stored: HubDevice = {
      ...device,
      etag: this.etag(),
      connectionState: 'Disconnected',
      lastActivityTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
    };
    this.devices.set(device.deviceId, stored);
    return Promise.resolve(structuredClone(stored));
  }

  get(deviceId: string): Promise<HubDevice> {
    this.check('get');
    const device = this.devices.get(deviceId);
    return device
      ? Promise.resolve(structuredClone(device))
      : Promise.reject(new errors.DeviceNotFoundError('not found'));
  }

  update(device: HubDevice): Promise<HubDevice> {
    this.check('update');
    const stored = { ...device, etag: this.etag() };
    this.devices.set(device.deviceId, stored);
    return Promise.resolve(structuredClone(stored));
  }

  delete(deviceId: string): Promise<void> {
    this.check('delete');
    if (!this.devices.delete(deviceId)) {
      return Promise.reject(new errors.DeviceNotFoundError('not found'));
    }
    return Promise.resolve();
  }

  /** Rows are twins: `etag` is the twin's, `deviceEtag` the device's (as in IoT Hub). */
  createQuery(sqlQuery: string, pageSize = 100): HubQuery {
    this.calls.push(`query:${sqlQuery}:${pageSize}`);
    const all = [...this.devices.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    const query = {
      continuationToken: undefined as string | undefined,
      hasMoreResults: true,
      next: (token?: string) => {
        this.check('next');
        if (token !== undefined) {
          // The SDK sends the token as the x-ms-continuation header; Node refuses CR/LF there.
          validateHeaderValue('x-ms-continuation', token);
          if (!/^hub-page-\d+$/.test(token))
            return Promise.reject(new errors.ArgumentError('invalid continuation'));
        }
        const start = token ? Number(token.replace('hub-page-', '')) : 0;
        const rows = all.slice(start, start + pageSize).map((d) => ({
          deviceId: d.deviceId,
          etag: 'twin-etag',
          deviceEtag: d.etag,
          status: d.status,
          connectionState: d.connectionState,
          cloudToDeviceMessageCount: d.cloudToDeviceMessageCount,
          authenticationType: 'sas',
        }));
        const end = start + pageSize;
        query.continuationToken = end < all.length ? `hub-page-${end}` : undefined;
        query.hasMoreResults = query.continuationToken !== undefined;
        return Promise.resolve({ result: rows });
      },
    };
    return query;
  }
}

interface Logged {
  level: string;
  text: string;
}

function setup() {
  const registry = new FakeRegistry();
  const services = createApiServices({
    registry,
    serviceClient: () => {
      throw new Error('not used');
    },
    statusStore: new MemoryEntityStore(),
    hubHostName: hubHost,
  });
  const handlers = createDeviceHandlers(() => services);
  const logs: Logged[] = [];
  const context = () =>
    new InvocationContext({
      logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
    });
  return { registry, handlers, logs, context };
}

describe('POST /devices', () => {
  it('creates a device and answers 201 with Location, keys and a device connection string', async () => {
    const { handlers, context, registry } = setup();
    const response = await handlers.create(
      request('POST', base, { body: JSON.stringify({ deviceId: 'thermo-1', status: 'disabled' }) }),
      context(),
    );
    expect(response.status).toBe(201);
    expect(header(response, 'Location')).toBe('/api/devices/thermo-1');
    const body = json(response);
    expect(body).toMatchObject({
      deviceId: 'thermo-1',
      status: 'disabled',
      connectionState: 'Disconnected',
      cloudToDeviceMessageCount: 0,
      etag: 'etag-1',
    });
    expect(body).not.toHaveProperty('lastActivityTime');
    expect(body.primaryKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(body.secondaryKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(body.primaryKey).not.toBe(body.secondaryKey);
    expect(body.connectionString).toBe(
      `HostName=${hubHost};DeviceId=thermo-1;SharedAccessKey=${String(body.primaryKey)}`,
    );
    const stored = registry.devices.get('thermo-1');
    expect(stored?.authentication?.symmetricKey?.primaryKey).toBe(body.primaryKey);
  });

  it('generates an id when none is given, and accepts an empty body', async () => {
    const { handlers, context } = setup();
    const response = await handlers.create(request('POST', base), context());
    expect(response.status).toBe(201);
    const body = json(response);
    expect(body.deviceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.status).toBe('enabled');
  });

  it('answers 409 when the device exists, and changes nothing', async () => {
    const { handlers, context, registry } = setup();
    await handlers.create(request('POST', base, { body: '{"deviceId":"d1"}' }), context());
    const before = structuredClone(registry.devices.get('d1'));
    const response = await handlers.create(
      request('POST', base, { body: '{"deviceId":"d1"}' }),
      context(),
    );
    const body = expectProblem(response, 409, 'device-already-exists');
    expect(response.body).not.toContain('primaryKey');
    expect(body.detail).toContain('d1');
    expect(registry.devices.get('d1')).toEqual(before);
  });

  it.each([
    ['malformed JSON', '{"deviceId": ', 400, 'invalid-json'],
    ['a wrong type', '{"deviceId": 42}', 400, 'invalid-device-id'],
    ['an unknown field', '{"deviceId": "d", "colour": "red"}', 400, 'validation-failed'],
    ['a bad status', '{"status": "paused"}', 400, 'validation-failed'],
    ['an invalid device id', '{"deviceId": "has space"}', 400, 'invalid-device-id'],
    [
      'a device id that injects connection string fields',
      JSON.stringify({ deviceId: 'x;HostName=evil:443;DeviceId=sim-1' }),
      400,
      'invalid-device-id',
    ],
    [
      'a too long device id',
      JSON.stringify({ deviceId: 'x'.repeat(129) }),
      400,
      'invalid-device-id',
    ],
    ['a JSON array', '[]', 400, 'validation-failed'],
  ])('refuses %s without calling the hub', async (_what, body, status, slug) => {
    const { handlers, context, registry } = setup();
    const response = await handlers.create(request('POST', base, { body }), context());
    expectProblem(response, status, slug);
    expect(registry.calls).toEqual([]);
  });

  it('lists each offending field of a validation failure', async () => {
    const { handlers, context } = setup();
    const response = await handlers.create(
      request('POST', base, { body: '{"status": 1, "extra": true}' }),
      context(),
    );
    const body = expectProblem(response, 400, 'validation-failed');
    const paths = (body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['', 'status']);
  });

  it('refuses bodies over 64 KB with 413', async () => {
    const { handlers, context, registry } = setup();
    const body = JSON.stringify({ deviceId: 'd', pad: 'x'.repeat(64 * 1024) });
    expectProblem(
      await handlers.create(request('POST', base, { body }), context()),
      413,
      'payload-too-large',
    );
    expect(registry.calls).toEqual([]);
  });

  it('refuses non-JSON content types with 415', async () => {
    const { handlers, context } = setup();
    const response = await handlers.create(
      request('POST', base, {
        body: 'deviceId=d',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      context(),
    );
    expectProblem(response, 415, 'unsupported-media-type');
  });
});

describe('GET /devices/{deviceId}', () => {
  it('returns the device without keys, with its etag', async () => {
    const { handlers, context, registry } = setup();
    await handlers.create(request('POST', base, { body: '{"deviceId":"d1"}' }), context());
    const response = await handlers.get(
      request('GET', `${base}/d1`, { params: { deviceId: 'd1' } }),
      context(),
    );
    expect(response.status).toBe(200);
    expect(header(response, 'ETag')).toBe('"etag-1"');
    const body = json(response);
    expect(Object.keys(body).sort()).toEqual(
      ['cloudToDeviceMessageCount', 'connectionState', 'deviceId', 'etag', 'status'].sort(),
    );
    const key = registry.devices.get('d1')?.authentication?.symmetricKey?.primaryKey;
    expect(response.body).not.toContain(key);
  });

  it('answers 404 for an unknown device', async () => {
    const { handlers, context } = setup();
    const response = await handlers.get(
      request('GET', `${base}/ghost`, { params: { deviceId: 'ghost' } }),
      context(),
    );
    expectProblem(response, 404, 'device-not-found');
  });

  it('answers 400 for an invalid device id in the path', async () => {
    const { handlers, context, registry } = setup();
    const response = await handlers.get(
      request('GET', `${base}/a%20b`, { params: { deviceId: 'a b' } }),
      context(),
    );
    expectProblem(response, 400, 'invalid-device-id');
    expect(registry.calls).toEqual([]);
  });
});

describe('GET /devices', () => {
  async function seeded(count: number) {
    const s = setup();
    for (let i = 0; i < count; i++) {
      await s.handlers.create(
        request('POST', base, { body: JSON.stringify({ deviceId: `dev-${i}` }) }),
        s.context(),
      );
    }
    return s;
  }

  it('pages through every device with opaque continuation tokens', async () => {
    const { handlers, context, registry } = await seeded(5);
    const pages = await readPages<{ deviceId: string; etag: string }>(
      (url) => handlers.list(request('GET', url), context()),
      base,
      2,
    );
    const seen: string[] = [];
    for (const page of pages) {
      seen.push(...page.items.map((d) => d.deviceId));
      for (const item of page.items) {
        // The device etag (usable with If-Match), not the twin's.
        expect(item.etag).toBe(registry.devices.get(item.deviceId)?.etag);
      }
      const token = page.continuationToken;
      if (token) expect(token).not.toContain('hub-page');
    }
    expect(pages.length).toBe(3);
    expect(seen).toEqual(['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4']);
    expect(registry.calls).toContain('query:SELECT * FROM devices:2');
  });

  it('never lists keys', async () => {
    const { handlers, context, registry } = await seeded(2);
    const response = await handlers.list(request('GET', base), context());
    for (const device of registry.devices.values()) {
      expect(response.body).not.toContain(device.authentication?.symmetricKey?.primaryKey);
    }
    expect(response.body).not.toContain('Key');
  });

  it.each([
    ['pageSize=0', 'validation-failed'],
    ['pageSize=abc', 'validation-failed'],
    ['pageSize=5000', 'validation-failed'],
    ['continuationToken=not-ours', 'invalid-continuation-token'],
    ['continuationToken=e30', 'invalid-continuation-token'],
    ['colour=red', 'validation-failed'],
  ])('refuses %s with 400', async (query, slug) => {
    const { handlers, context } = setup();
    expectProblem(await handlers.list(request('GET', `${base}?${query}`), context()), 400, slug);
  });

  const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  it.each([
    ['a CR/LF (header injection)', encoded({ v: 1, hub: '\r\nX: 1' })],
    ['a control character', encoded({ v: 1, hub: 'hub-page-2\u0000' })],
    ['non-ASCII text', encoded({ v: 1, hub: 'hub-page-2é' })],
    ['an extra field', encoded({ v: 1, hub: 'hub-page-2', x: 1 })],
    ['another version', encoded({ v: 2, hub: 'hub-page-2' })],
    ['padding', `${encoded({ v: 1, hub: 'hub-page-2' })}==`],
    ['a hub token the hub does not know', encoded({ v: 1, hub: 'forged' })],
  ])('answers a token with %s with 400 invalid-continuation-token', async (_what, token) => {
    const { handlers, context, logs } = await seeded(3);
    const url = `${base}?pageSize=2&continuationToken=${encodeURIComponent(token)}`;
    expectProblem(
      await handlers.list(request('GET', url), context()),
      400,
      'invalid-continuation-token',
    );
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('accepts its own token unchanged', async () => {
    const { handlers, context } = await seeded(3);
    const token = encoded({ v: 1, hub: 'hub-page-2' });
    const response = await handlers.list(
      request('GET', `${base}?continuationToken=${token}`),
      context(),
    );
    expect(response.status).toBe(200);
    expect(json<{ items: unknown[] }>(response).items).toHaveLength(1);
  });
});

describe('PATCH /devices/{deviceId}', () => {
  async function withDevice() {
    const s = setup();
    await s.handlers.create(request('POST', base, { body: '{"deviceId":"d1"}' }), s.context());
    s.registry.calls = [];
    return s;
  }

  const patch = (body: string, headers: Record<string, string> = {}) =>
    request('PATCH', `${base}/d1`, { body, headers, params: { deviceId: 'd1' } });

  it('disables the device when If-Match holds the current etag, keeping its keys', async () => {
    const { handlers, context, registry } = await withDevice();
    const keys = structuredClone(registry.devices.get('d1')?.authentication);
    const response = await handlers.update(
      patch('{"status":"disabled","statusReason":"maintenance"}', { 'If-Match': '"etag-1"' }),
      context(),
    );
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({
      status: 'disabled',
      statusReason: 'maintenance',
      etag: 'etag-2',
    });
    expect(header(response, 'ETag')).toBe('"etag-2"');
    const stored = registry.devices.get('d1');
    expect(stored?.status).toBe('disabled');
    expect(stored?.authentication).toEqual(keys);
    expect(response.body).not.toContain('Key');
  });

  it('answers 412 on a stale etag and changes nothing', async () => {
    const { handlers, context, registry } = await withDevice();
    const response = await handlers.update(
      patch('{"status":"disabled"}', { 'If-Match': '"etag-0"' }),
      context(),
    );
    expectProblem(response, 412, 'precondition-failed');
    expect(registry.calls).not.toContain('update');
    expect(registry.devices.get('d1')?.status).toBe('enabled');
  });

  it('maps a hub-side etag conflict to 412 too', async () => {
    const { handlers, context, registry } = await withDevice();
    registry.update = () => Promise.reject(new errors.InvalidEtagError('etag mismatch'));
    const response = await handlers.update(patch('{"status":"disabled"}'), context());
    expectProblem(response, 412, 'precondition-failed');
  });

  it('updates unconditionally without If-Match', async () => {
    const { handlers, context, registry } = await withDevice();
    const response = await handlers.update(patch('{"status":"disabled"}'), context());
    expect(response.status).toBe(200);
    expect(registry.devices.get('d1')?.status).toBe('disabled');
  });

  it('refuses a missing status and unknown fields without calling the hub', async () => {
    const { handlers, context, registry } = await withDevice();
    expectProblem(await handlers.update(patch('{}'), context()), 400, 'validation-failed');
    expectProblem(
      await handlers.update(patch('{"status":"enabled","etag":"x"}'), context()),
      400,
      'validation-failed',
    );
    expect(registry.calls).toEqual([]);
  });

  it('answers 404 for an unknown device', async () => {
    const { handlers, context } = setup();
    const response = await handlers.update(patch('{"status":"disabled"}'), context());
    expectProblem(response, 404, 'device-not-found');
  });
});

describe('DELETE /devices/{deviceId}', () => {
  it('deletes with 204, then 404', async () => {
    const { handlers, context, registry } = setup();
    await handlers.create(request('POST', base, { body: '{"deviceId":"d1"}' }), context());
    const remove = () =>
      handlers.remove(request('DELETE', `${base}/d1`, { params: { deviceId: 'd1' } }), context());
    const first = await remove();
    expect(first.status).toBe(204);
    expect(first.body).toBeUndefined();
    expect(registry.devices.has('d1')).toBe(false);
    expectProblem(await remove(), 404, 'device-not-found');
  });
});

describe('hub failures', () => {
  const key = 'c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw';

  it('answers 429 with Retry-After when the hub throttles', async () => {
    const { handlers, context, registry } = setup();
    registry.failWith = Object.assign(new errors.ThrottlingError('throttled'), {
      response: { headers: { 'retry-after': '7' } },
    });
    const response = await handlers.list(request('GET', base), context());
    expectProblem(response, 429, 'throttled');
    expect(header(response, 'Retry-After')).toBe('7');
  });

  it('answers 503 when the hub is unreachable', async () => {
    const { handlers, context, registry } = setup();
    registry.failWith = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
    });
    const response = await handlers.get(
      request('GET', `${base}/d1`, { params: { deviceId: 'd1' } }),
      context(),
    );
    expectProblem(response, 503, 'hub-unavailable');
  });

  it('answers a bare 500 for unexpected failures, and logs no secrets or stacks', async () => {
    const { handlers, context, registry, logs } = setup();
    registry.failWith = new TypeError(
      `bad state HostName=h;SharedAccessKeyName=s;SharedAccessKey=${key}`,
    );
    const response = await handlers.get(
      request('GET', `${base}/d1`, { params: { deviceId: 'd1' } }),
      context(),
    );
    const body = expectProblem(response, 500, 'internal');
    expect(body.detail).toBe('The request could not be completed.');
    expect(response.body).not.toContain(key);
    expect(response.body).not.toContain('TypeError');
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) {
      expect(line.text).not.toContain(key);
      expect(line.text).not.toMatch(/\n\s+at /);
    }
  });
});
