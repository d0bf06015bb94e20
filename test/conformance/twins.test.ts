/**
 * Device twins through the unmodified official SDKs: the device (`azure-iot-device` over MQTT)
 * reads its twin, reports properties and receives desired changes; the service (`azure-iothub`
 * `Registry`) reads, patches (with etags) and replaces twins and queries them. Limits and key rules
 * are refused as IoT Hub refuses them; twins survive a SIGKILL of the durable hub.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import type { Client as DeviceClient } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import {
  desiredEvents,
  mqttDeviceClient,
  registerDevice,
  report,
  type TestDevice,
} from '../support/devices';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { failure, restCall } from '../support/registry-rest';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
const clients: DeviceClient[] = [];
let counter = 0;

const newDevice = (): Promise<TestDevice> =>
  registerDevice(registry, `twin-${++counter}-${Date.now().toString(36)}`);

async function connect(target: EmulatorInstance, device: TestDevice): Promise<DeviceClient> {
  const client = mqttDeviceClient(
    target.connection.deviceConnectionString(device.deviceId, device.key),
  );
  clients.push(client);
  await client.open();
  return client;
}

/** Every desired-properties event the device SDK emits, in order. */
const twinPath = (deviceId: string) =>
  `/twins/${encodeURIComponent(deviceId)}?api-version=2021-04-12`;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  registry = createRegistry(emulator.connection.serviceConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await emulator?.stop();
});

describe('device and service see one twin', () => {
  test('a reported update is visible to Registry.getTwin as soon as the device is answered', async () => {
    const device = await newDevice();
    const client = await connect(emulator, device);
    const twin = await client.getTwin();
    await report(twin, { firmware: '1.2.3', config: { interval: 5 } });

    const service = (await registry.getTwin(device.deviceId)).responseBody;
    expect(service.properties.reported).toMatchObject({
      firmware: '1.2.3',
      config: { interval: 5 },
      $version: 2,
    });
    const metadata = (service.properties.reported as Record<string, unknown>).$metadata as {
      firmware: { $lastUpdated: string };
    };
    expect(Date.parse(metadata.firmware.$lastUpdated)).not.toBeNaN();

    // null removes a reported property; the device reads back what the service sees.
    await report(twin, { firmware: null });
    const again = await client.getTwin();
    expect(again.properties.reported).not.toHaveProperty('firmware');
    expect((await registry.getTwin(device.deviceId)).responseBody.properties.reported).toEqual(
      expect.not.objectContaining({ firmware: expect.anything() }),
    );
  });

  test('Registry.updateTwin merges desired properties and tags and pushes the patch to the device', async () => {
    const device = await newDevice();
    const client = await connect(emulator, device);
    const twin = await client.getTwin();
    const events = await desiredEvents(twin);

    const before = (await registry.getTwin(device.deviceId)).responseBody;
    const updated = (
      await registry.updateTwin(
        device.deviceId,
        { tags: { site: 'north' }, properties: { desired: { telemetryIntervalSeconds: 7 } } },
        before.etag,
      )
    ).responseBody;
    expect(updated.etag).not.toBe(before.etag);
    expect(updated.tags).toEqual({ site: 'north' });
    expect(updated.properties.desired).toMatchObject({ telemetryIntervalSeconds: 7, $version: 2 });
    const meta = (updated.properties.desired as Record<string, unknown>).$metadata as {
      telemetryIntervalSeconds: { $lastUpdatedVersion: number };
    };
    expect(meta.telemetryIntervalSeconds.$lastUpdatedVersion).toBe(2);

    const pushed = await until('the desired patch on the device', () =>
      events.find((e) => e.telemetryIntervalSeconds === 7),
    );
    expect(pushed.$version).toBe(2);

    // A second patch merges; null removes.
    await registry.updateTwin(
      device.deviceId,
      { properties: { desired: { mode: 'eco', telemetryIntervalSeconds: null } } },
      '*',
    );
    const after = (await client.getTwin()).properties.desired;
    expect(after).toMatchObject({ mode: 'eco', $version: 3 });
    expect(after).not.toHaveProperty('telemetryIntervalSeconds');
  });

  test('PUT /twins replaces tags and desired properties; the device learns what was removed', async () => {
    const device = await newDevice();
    await registry.updateTwin(
      device.deviceId,
      { tags: { a: 1, b: 2 }, properties: { desired: { keep: 'x', drop: 'y' } } },
      '*',
    );
    const client = await connect(emulator, device);
    const twin = await client.getTwin();
    const events = await desiredEvents(twin);

    const replaced = await restCall(
      registry,
      'PUT',
      twinPath(device.deviceId),
      { 'Content-Type': 'application/json; charset=utf-8', 'If-Match': '"*"' },
      { tags: { c: 3 }, properties: { desired: { keep: 'z' } } },
    );
    expect(replaced.status).toBe(200);
    const body = replaced.body as { tags: unknown; properties: { desired: unknown } };
    expect(body.tags).toEqual({ c: 3 });
    expect(body.properties.desired).toMatchObject({ keep: 'z', $version: 3 });
    expect(body.properties.desired).not.toHaveProperty('drop');
    const pushed = await until('the replacement on the device', () =>
      events.find((e) => e.keep === 'z'),
    );
    expect(pushed).toMatchObject({ $version: 3 });
    // The SDK merges the pushed patch into its copy: the removed property went with the `null`.
    expect(twin.properties.desired).toMatchObject({ keep: 'z' });
    expect(twin.properties.desired).not.toHaveProperty('drop');
  });

  test('a stale etag fails with 412 PreconditionFailed and changes nothing', async () => {
    const device = await newDevice();
    const first = (await registry.getTwin(device.deviceId)).responseBody;
    await registry.updateTwin(device.deviceId, { tags: { v: 1 } }, first.etag);
    const error = await failure(
      registry.updateTwin(device.deviceId, { tags: { v: 2 } }, first.etag),
    );
    expect(error.name).toBe('InvalidEtagError');
    expect(error.response?.statusCode).toBe(412);
    expect(error.responseBody).toContain('ErrorCode:PreconditionFailed;');
    expect((await registry.getTwin(device.deviceId)).responseBody.tags).toEqual({ v: 1 });
  });

  test('the twin of a deleted device is gone; a new device of the same id starts fresh', async () => {
    const device = await newDevice();
    await registry.updateTwin(device.deviceId, { tags: { old: true } }, '*');
    await registry.delete(device.deviceId);
    expect((await failure(registry.getTwin(device.deviceId))).name).toBe('DeviceNotFoundError');
    await registerDevice(registry, device.deviceId);
    const fresh = (await registry.getTwin(device.deviceId)).responseBody;
    expect(fresh.tags ?? {}).toEqual({});
    expect(fresh.properties.desired).toMatchObject({ $version: 1 });
  });
});

describe('limits and key rules', () => {
  test.each([
    ['a key with a dot', { properties: { desired: { 'a.b': 1 } } }],
    ['a key with a space', { tags: { 'a b': 1 } }],
    ['a $ key', { properties: { desired: { $secret: 1 } } }],
    ['reported properties from the service', { properties: { reported: { x: 1 } } }],
    [
      'objects nested 11 deep',
      { properties: { desired: JSON.parse(`${'{"a":'.repeat(11)}1${'}'.repeat(11)}`) as object } },
    ],
  ])('the service is refused %s with 400 and nothing changes', async (_name, patch) => {
    const device = await newDevice();
    const before = (await registry.getTwin(device.deviceId)).responseBody;
    const error = await failure(registry.updateTwin(device.deviceId, patch, '*'));
    expect(error.response?.statusCode).toBe(400);
    expect(error.responseBody).toContain('ErrorCode:ArgumentInvalid;');
    expect((await registry.getTwin(device.deviceId)).responseBody.etag).toBe(before.etag);
  });

  test('nesting 10 deep is accepted', async () => {
    const device = await newDevice();
    const nested = JSON.parse(`${'{"a":'.repeat(10)}1${'}'.repeat(10)}`) as object;
    await registry.updateTwin(device.deviceId, { properties: { desired: nested } }, '*');
  });

  test('desired over 32 KB and tags over 8 KB answer 413 naming the limit', async () => {
    const device = await newDevice();
    const big = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'x'.repeat(1000)]));
    const desired = await failure(
      registry.updateTwin(device.deviceId, { properties: { desired: big(33) } }, '*'),
    );
    expect(desired.response?.statusCode).toBe(413);
    expect(desired.responseBody).toContain('32768');
    const tags = await failure(registry.updateTwin(device.deviceId, { tags: big(9) }, '*'));
    expect(tags.response?.statusCode).toBe(413);
    expect(tags.responseBody).toContain('8192');
    // Just under the limit is fine.
    await registry.updateTwin(device.deviceId, { properties: { desired: big(30) } }, '*');
  });

  test('a device reporting over 32 KB is refused and its twin keeps what it had', async () => {
    const device = await newDevice();
    const client = await connect(emulator, device);
    const twin = await client.getTwin();
    await report(twin, { ok: 1 });
    const big = Object.fromEntries(
      Array.from({ length: 33 }, (_, i) => [`k${i}`, 'x'.repeat(1000)]),
    );
    await expect(report(twin, big)).rejects.toThrow();
    await expect(report(twin, { 'bad.key': 1 })).rejects.toThrow();
    const reported = (await registry.getTwin(device.deviceId)).responseBody.properties.reported;
    expect(reported).toMatchObject({ ok: 1, $version: 2 });
  });
});

describe('queries over twins', () => {
  const site = `site-${Date.now().toString(36)}`;
  const ids: string[] = [];

  beforeAll(async () => {
    for (const z of [1, 4, 5, 9]) {
      const device = await newDevice();
      ids.push(device.deviceId);
      await registry.updateTwin(device.deviceId, { tags: { site } }, '*');
      const client = await connect(emulator, device);
      await report(await client.getTwin(), { z });
    }
  });

  test("WHERE tags.x = 'y' AND properties.reported.z > 3 selects by tags and reported values, paged", async () => {
    const query = registry.createQuery(
      `SELECT * FROM devices WHERE tags.site = '${site}' AND properties.reported.z > 3`,
      2,
    );
    const first = await query.nextAsTwin();
    expect(query.hasMoreResults).toBe(true);
    const second = await query.nextAsTwin();
    expect(query.hasMoreResults).toBe(false);
    const found = [...first.result, ...second.result];
    expect(found.map((t) => t.deviceId)).toEqual(ids.slice(1));
    expect(found.map((t) => (t.properties.reported as { z: number }).z)).toEqual([4, 5, 9]);
  });

  test('projections, OR/NOT and COUNT()', async () => {
    const rows = await registry
      .createQuery(
        `SELECT deviceId, properties.reported.z AS zed FROM devices WHERE tags.site = '${site}' AND (properties.reported.z = 1 OR NOT properties.reported.z < 9)`,
      )
      .next();
    expect(rows.result).toEqual([
      { deviceId: ids[0], zed: 1 },
      { deviceId: ids[3], zed: 9 },
    ]);
    const count = await registry
      .createQuery(`SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.site = '${site}'`)
      .next();
    expect(count.result).toEqual([{ numberOfDevices: 4 }]);
  });

  test('a malformed query answers 400', async () => {
    const error = await failure(registry.createQuery('SELECT * FROM devices WHERE').next());
    expect(error.response?.statusCode).toBe(400);
  });
});

describe('durability', () => {
  test('tags, desired and reported properties survive SIGKILL', async () => {
    const first = await startEmulator();
    const durableRegistry = createRegistry(first.connection.serviceConnectionString);
    const device = await registerDevice(durableRegistry, 'durable-twin');
    await durableRegistry.updateTwin(
      device.deviceId,
      { tags: { site: 'x' }, properties: { desired: { interval: 3 } } },
      '*',
    );
    const client = await connect(first, device);
    await report(await client.getTwin(), { firmware: '2.0' });
    const before = (await durableRegistry.getTwin(device.deviceId)).responseBody;

    await first.stop('SIGKILL');
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));

    const second = await startEmulator({ dataDir: first.dataDir });
    try {
      const after = (
        await createRegistry(second.connection.serviceConnectionString).getTwin(device.deviceId)
      ).responseBody;
      expect(after.etag).toBe(before.etag);
      expect(after.tags).toEqual({ site: 'x' });
      expect(after.properties.desired).toMatchObject({ interval: 3, $version: 2 });
      expect(after.properties.reported).toMatchObject({ firmware: '2.0', $version: 2 });
    } finally {
      await second.stop();
    }
  });
});
