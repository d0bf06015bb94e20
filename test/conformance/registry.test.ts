/**
 * The registry over HTTPS, driven by the official `azure-iothub` `Registry` (1.16.6) against the
 * emulator process: every call it makes and the typed errors it derives from our statuses and
 * bodies. Also pins `createRegistry`'s use of the SDK's non-public REST client (host:port).
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`, or
 * `node dist/test/support/run-jest.js <this file>`).
 */
import { Registry } from 'azure-iothub';
import { wellKnownHubIdentity } from '@iot-hub-functions/local-iothub';
import {
  agentMaxSockets,
  createRegistry,
  HostPortAgent,
  installHostPortAgent,
  splitHostPort,
} from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { failure, restCall as restApiCall } from '../support/registry-rest';

let emulator: EmulatorInstance;
let registry: Registry;

const restCall = (
  method: string,
  path: string,
  headers: Record<string, string> | null,
  body: unknown = null,
) => restApiCall(registry, method, path, headers, body);

/** The agent `createRegistry` installed on the SDK's REST client (a non-public member). */
function restAgentOf(r: Registry): HostPortAgent {
  return (
    r as unknown as { _restApiClient: { _http: { _options: { http: { agent: HostPortAgent } } } } }
  )._restApiClient._http._options.http.agent;
}

let counter = 0;
const newId = (prefix = 'reg') => `${prefix}-${++counter}-${Date.now().toString(36)}`;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
});

afterAll(async () => {
  await emulator?.stop();
});

describe('create / get / list', () => {
  test('create generates SAS keys when none are given; get and list return the device', async () => {
    const deviceId = newId();
    const created = (await registry.create({ deviceId })).responseBody;
    expect(created.deviceId).toBe(deviceId);
    expect(created.status).toBe('enabled');
    expect(created.connectionState).toBe('Disconnected');
    expect((created.authentication as { type?: string } | undefined)?.type).toBe('sas');
    const { primaryKey, secondaryKey } = created.authentication?.symmetricKey ?? {};
    expect(Buffer.from(primaryKey ?? '', 'base64')).toHaveLength(32);
    expect(Buffer.from(secondaryKey ?? '', 'base64')).toHaveLength(32);
    expect(primaryKey).not.toBe(secondaryKey);
    expect(created.etag).toEqual(expect.any(String));
    expect(created.generationId).toEqual(expect.any(String));

    const fetched = (await registry.get(deviceId)).responseBody;
    expect(fetched.deviceId).toBe(deviceId);
    expect(fetched.etag).toBe(created.etag);
    expect(fetched.authentication?.symmetricKey?.primaryKey).toBe(primaryKey);

    const listed = (await registry.list()).responseBody.map((d) => d.deviceId);
    expect(listed).toContain(deviceId);
  });

  test('create keeps the keys and status it is given', async () => {
    const deviceId = newId();
    const primaryKey = Buffer.alloc(32, 1).toString('base64');
    const secondaryKey = Buffer.alloc(32, 2).toString('base64');
    const created = (
      await registry.create({
        deviceId,
        status: 'disabled',
        authentication: { symmetricKey: { primaryKey, secondaryKey } },
      })
    ).responseBody;
    expect(created.status).toBe('disabled');
    expect(created.authentication?.symmetricKey).toEqual({ primaryKey, secondaryKey });
  });

  test('ids with the characters IoT Hub allows round-trip through the URL', async () => {
    const deviceId = `odd:id.+%_#*?!(),=@$'-${++counter}`;
    await registry.create({ deviceId });
    expect((await registry.get(deviceId)).responseBody.deviceId).toBe(deviceId);
  });

  test('creating an existing device fails with DeviceAlreadyExistsError', async () => {
    const deviceId = newId();
    await registry.create({ deviceId });
    const error = await failure(registry.create({ deviceId }));
    expect(error.name).toBe('DeviceAlreadyExistsError');
    expect(error.response?.statusCode).toBe(409);
  });

  test.each([
    ['a space', 'has space'],
    ['a slash', 'has/slash'],
    ['129 characters', 'x'.repeat(129)],
    ['non-ASCII', 'café'],
  ])('an id with %s is refused with ArgumentError', async (_what, deviceId) => {
    const error = await failure(registry.create({ deviceId }));
    expect(error.name).toBe('ArgumentError');
    expect(error.response?.statusCode).toBe(400);
    expect(JSON.parse(error.responseBody ?? '{}')).toEqual({
      Message: expect.stringMatching(/^ErrorCode:ArgumentInvalid;/),
      ExceptionMessage: expect.any(String),
    });
  });

  test('getting an unknown device fails with DeviceNotFoundError', async () => {
    const error = await failure(registry.get(newId('missing')));
    expect(error.name).toBe('DeviceNotFoundError');
    expect(error.response?.statusCode).toBe(404);
  });
});

describe('update and etags', () => {
  test('update changes status and keys and issues a new etag', async () => {
    const deviceId = newId();
    const created = (await registry.create({ deviceId })).responseBody;
    const disabled = (await registry.update({ deviceId, status: 'disabled' })).responseBody;
    expect(disabled.status).toBe('disabled');
    expect(disabled.etag).not.toBe(created.etag);
    expect(disabled.authentication?.symmetricKey?.primaryKey).toBe(
      created.authentication?.symmetricKey?.primaryKey,
    );

    const primaryKey = Buffer.alloc(32, 7).toString('base64');
    const rekeyed = (
      await registry.update({
        deviceId,
        status: 'enabled',
        authentication: { symmetricKey: { primaryKey, secondaryKey: '' } },
      })
    ).responseBody;
    expect(rekeyed.status).toBe('enabled');
    expect(rekeyed.authentication?.symmetricKey?.primaryKey).toBe(primaryKey);
    expect((await registry.get(deviceId)).responseBody.etag).toBe(rekeyed.etag);
  });

  test('updating an unknown device fails with DeviceNotFoundError', async () => {
    const error = await failure(
      registry.update({ deviceId: newId('missing'), status: 'disabled' }),
    );
    expect(error.name).toBe('DeviceNotFoundError');
  });

  test('If-Match with a stale etag fails with InvalidEtagError; the current etag succeeds', async () => {
    const deviceId = newId();
    const created = (await registry.create({ deviceId })).responseBody;
    await registry.update({ deviceId, status: 'disabled' });
    const path = `/devices/${encodeURIComponent(deviceId)}?api-version=2021-04-12`;
    const json = { 'Content-Type': 'application/json; charset=utf-8' };

    const stale = await failure(
      restCall(
        'PUT',
        path,
        { ...json, 'If-Match': `"${created.etag}"` },
        { deviceId, status: 'enabled' },
      ),
    );
    expect(stale.name).toBe('InvalidEtagError');
    expect(stale.response?.statusCode).toBe(412);

    const current = (await registry.get(deviceId)).responseBody.etag;
    const ok = await restCall(
      'PUT',
      path,
      { ...json, 'If-Match': `"${current}"` },
      { deviceId, status: 'enabled' },
    );
    expect(ok.status).toBe(200);
    expect((ok.body as { status: string }).status).toBe('enabled');
  });

  test('a body naming another device is refused with ArgumentError', async () => {
    const deviceId = newId();
    await registry.create({ deviceId });
    const error = await failure(
      restCall(
        'PUT',
        `/devices/${deviceId}?api-version=2021-04-12`,
        { 'Content-Type': 'application/json; charset=utf-8', 'If-Match': '"*"' },
        { deviceId: 'someone-else' },
      ),
    );
    expect(error.name).toBe('ArgumentError');
  });
});

describe('delete', () => {
  test('delete removes the device; deleting again fails with DeviceNotFoundError', async () => {
    const deviceId = newId();
    await registry.create({ deviceId });
    const deleted = await registry.delete(deviceId);
    expect(deleted.httpResponse.statusCode).toBe(204);
    expect((await failure(registry.get(deviceId))).name).toBe('DeviceNotFoundError');
    expect((await failure(registry.delete(deviceId))).name).toBe('DeviceNotFoundError');
  });

  test('delete with a stale etag fails with InvalidEtagError and keeps the device', async () => {
    const deviceId = newId();
    const created = (await registry.create({ deviceId })).responseBody;
    await registry.update({ deviceId, status: 'disabled' });
    const error = await failure(
      restCall('DELETE', `/devices/${deviceId}?api-version=2021-04-12`, {
        'If-Match': `"${created.etag}"`,
      }),
    );
    expect(error.name).toBe('InvalidEtagError');
    expect((await registry.get(deviceId)).responseBody.deviceId).toBe(deviceId);
  });
});

describe('query and twins', () => {
  test('SELECT * FROM devices pages with x-ms-continuation only while more remain', async () => {
    // A fresh emulator, so the result set is exactly what this test created.
    const own = await startEmulator({ inMemory: true });
    try {
      const reg = createRegistry(own.connection.serviceConnectionString);
      const ids = ['q-a', 'q-b', 'q-c', 'q-d', 'q-e'];
      for (const deviceId of ids) await reg.create({ deviceId });

      const query = reg.createQuery('SELECT * FROM devices', 2);
      const pages: string[][] = [];
      const continuations: (string | undefined)[] = [];
      while (query.hasMoreResults) {
        const page = await query.nextAsTwin();
        pages.push(page.result.map((twin) => twin.deviceId));
        continuations.push(page.message.headers['x-ms-continuation'] as string | undefined);
        if (pages.length > 10) throw new Error('paging does not end');
      }
      expect(pages).toEqual([['q-a', 'q-b'], ['q-c', 'q-d'], ['q-e']]);
      expect(continuations.map((c) => typeof c)).toEqual(['string', 'string', 'undefined']);

      const exactPages = reg.createQuery('SELECT * FROM devices', 5);
      await exactPages.next();
      expect(exactPages.hasMoreResults).toBe(false);
    } finally {
      await own.stop();
    }
  });

  test("WHERE deviceId = '…' returns that device's twin", async () => {
    const deviceId = newId("it's");
    await registry.create({ deviceId });
    await registry.create({ deviceId: newId() });
    const escaped = deviceId.replace(/'/g, "''");
    const { result } = await registry
      .createQuery(`SELECT * FROM devices WHERE deviceId = '${escaped}'`)
      .nextAsTwin();
    expect(result.map((t) => t.deviceId)).toEqual([deviceId]);
    expect(result[0]?.properties.desired).toEqual(expect.objectContaining({ $version: 1 }));
  });

  test('a query beyond the supported subset answers 501', async () => {
    const error = await failure(registry.createQuery('SELECT * FROM devices.modules').next());
    expect(error.response?.statusCode).toBe(501);
    expect(error.responseBody).toContain('ErrorCode:NotImplemented;');
  });

  test('getTwin returns a fresh twin; an unknown device fails with DeviceNotFoundError', async () => {
    const deviceId = newId();
    await registry.create({ deviceId });
    const twin = (await registry.getTwin(deviceId)).responseBody;
    expect(twin.deviceId).toBe(deviceId);
    expect(twin.properties.reported).toEqual(expect.objectContaining({ $version: 1 }));
    expect((await failure(registry.getTwin(newId('missing')))).name).toBe('DeviceNotFoundError');
  });

  test('purging the C2D queue of a device answers with the count', async () => {
    const deviceId = newId();
    await registry.create({ deviceId });
    const purged = await restCall(
      'DELETE',
      `/devices/${deviceId}/commands?api-version=2021-04-12`,
      null,
    );
    expect(purged.body).toEqual({ totalMessagesPurged: 0, deviceId, moduleId: null });
  });
});

describe('authorization and unsupported calls', () => {
  const withKey = (name: string, key: string) =>
    emulator.connection.serviceConnectionString
      .replace(/SharedAccessKeyName=[^;]+/, `SharedAccessKeyName=${name}`)
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${key}`);

  test('a wrong key fails with UnauthorizedError', async () => {
    const wrong = createRegistry(withKey('iothubowner', Buffer.alloc(32, 9).toString('base64')));
    const error = await failure(wrong.list());
    expect(error.name).toBe('UnauthorizedError');
    expect(error.response?.statusCode).toBe(401);
  });

  test('a policy without registry rights fails with UnauthorizedError', async () => {
    const service = wellKnownHubIdentity.policies.find((p) => p.name === 'service');
    const limited = createRegistry(withKey('service', service?.primaryKey ?? ''));
    expect((await failure(limited.get('anything'))).name).toBe('UnauthorizedError');
  });

  test('registryReadWrite can create and read', async () => {
    const policy = wellKnownHubIdentity.policies.find((p) => p.name === 'registryReadWrite');
    const rw = createRegistry(withKey('registryReadWrite', policy?.primaryKey ?? ''));
    const deviceId = newId();
    await rw.create({ deviceId });
    expect((await rw.get(deviceId)).responseBody.deviceId).toBe(deviceId);
  });

  test('an operation the emulator does not implement answers 501 with an IoT Hub error body', async () => {
    const error = await failure(registry.getRegistryStatistics());
    expect(error.response?.statusCode).toBe(501);
    expect(JSON.parse(error.responseBody ?? '{}')).toEqual({
      Message: expect.stringMatching(/^ErrorCode:NotImplemented;/),
      ExceptionMessage: expect.any(String),
    });
  });

  // X.509 devices are supported (test/conformance/device-x509.test.ts); `none` is not.
  test('an authentication type the local hub lacks (none) is refused with 501 rather than faked', async () => {
    const error = await failure(
      registry.create({
        deviceId: newId(),
        authentication: { type: 'none' } as never,
      }),
    );
    expect(error.response?.statusCode).toBe(501);
  });
});

describe('createRegistry (host:port support through the SDK REST client)', () => {
  test('splitHostPort separates a port only when there is one', () => {
    expect(splitHostPort('localhost:4443')).toEqual({ host: 'localhost', port: 4443 });
    expect(splitHostPort('my-hub.azure-devices.net')).toEqual({ host: 'my-hub.azure-devices.net' });
    expect(splitHostPort('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
  });

  test('installs the host:port agent on the REST client only when the host has a port', () => {
    const agentOf = (r: Registry): unknown =>
      (r as unknown as { _restApiClient: { _http: { _options?: { http?: { agent?: unknown } } } } })
        ._restApiClient._http._options?.http?.agent;
    expect(agentOf(registry)).toBeInstanceOf(HostPortAgent);

    const azure = createRegistry(
      'HostName=my-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5',
    );
    expect(agentOf(azure)).not.toBeInstanceOf(HostPortAgent);
    expect(installHostPortAgent(azure, 'my-hub.azure-devices.net')).toBe(false);
  });

  test("the agent closes an idle kept-alive socket before the hub does (the hub's Keep-Alive hint)", async () => {
    const agent = restAgentOf(registry);
    const deviceId = newId('keepalive');
    await registry.create({ deviceId });
    await registry.get(deviceId);
    const idle = Object.values(agent.freeSockets).flat();
    expect(idle.length).toBeGreaterThan(0);
    const socket = idle[0]!;
    // The hub answers with `Keep-Alive: timeout=5`; Node keeps the socket one second less.
    expect(socket.timeout).toBe(4000);
    const started = Date.now();
    let endedByHub = false;
    socket.once('end', () => (endedByHub = true));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(endedByHub).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a burst of calls shares at most agentMaxSockets connections instead of one each', async () => {
    const agent = restAgentOf(registry);
    const deviceId = newId('burst');
    await registry.create({ deviceId });
    const open = (): number =>
      Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length;
    let most = 0;
    let done = false;
    const calls = Promise.all(Array.from({ length: 60 }, () => registry.get(deviceId))).finally(
      () => (done = true),
    );
    while (!done) {
      most = Math.max(most, open());
      await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await calls;
    expect(answers.every((a) => a.responseBody.deviceId === deviceId)).toBe(true);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(agentMaxSockets);
  });

  test('without the agent, the SDK cannot reach host:port (the reason the agent exists)', async () => {
    const plain = Registry.fromConnectionString(emulator.connection.serviceConnectionString);
    const error = await failure(plain.list());
    expect(error.name).not.toBe('UnauthorizedError');
    expect(error.response).toBeUndefined();
  });
});
