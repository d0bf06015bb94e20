/**
 * The core's twins and direct methods on a FakeClock: method timeouts advance time instead of
 * sleeping; twins survive reopening the durable store (also through a compaction) and go with
 * their device; the query evaluator's corners and its paging.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock';
import type { MethodRequest } from '../../core/contracts';
import type { CreateCoreOptions, InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';
import { assertSize } from '../../core/twin-json';
import { runTwinQuery } from '../../core/twin-query';

/** Lets the core's pending promise callbacks run (invoke hands over after a microtask). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const call = { methodName: 'm', payload: { n: 1 }, responseTimeoutMs: 5000, connectTimeoutMs: 0 };

describe('direct methods (core)', () => {
  let clock: FakeClock;
  let core: InspectableCore;

  beforeEach(async () => {
    clock = new FakeClock();
    core = await createCore({ clock });
    await core.registry.create({ deviceId: 'd' });
    await core.registry.create({ deviceId: 'other' });
  });
  afterEach(() => core.close());

  const listen = (deviceId = 'd'): MethodRequest[] => {
    const requests: MethodRequest[] = [];
    core.methods.listen(deviceId, (request) => requests.push(request));
    return requests;
  };

  test('the answer with the request id resolves the call; other ids and devices are ignored', async () => {
    const requests = listen();
    const result = core.methods.invoke('d', call);
    await settle();
    const [request] = requests;
    expect(request).toMatchObject({ methodName: 'm', body: '{"n":1}' });
    expect(core.methods.respond('d', 'unknown', 200, Buffer.from('1'))).toBe(false);
    expect(core.methods.respond('other', request!.requestId, 200, Buffer.from('1'))).toBe(false);
    expect(core.methods.respond('d', request!.requestId, 200, Buffer.from('{"ok":true}'))).toBe(
      true,
    );
    await expect(result).resolves.toEqual({ status: 200, payload: { ok: true } });
    expect(core.methods.respond('d', request!.requestId, 200, Buffer.from('1'))).toBe(false);
  });

  test('no answer within the response timeout: GatewayTimeout, and a late answer is ignored', async () => {
    const requests = listen();
    const result = core.methods.invoke('d', call);
    await settle();
    clock.advance(4999);
    expect(core.methods.respond('d', 'nope', 200, Buffer.alloc(0))).toBe(false);
    clock.advance(1);
    await expect(result).rejects.toMatchObject({ code: 'GatewayTimeout' });
    expect(core.methods.respond('d', requests[0]!.requestId, 200, Buffer.alloc(0))).toBe(false);
  });

  test('a device that starts listening within the connect timeout gets the call', async () => {
    const result = core.methods.invoke('d', { ...call, connectTimeoutMs: 10_000 });
    clock.advance(9000);
    const requests = listen();
    await settle();
    expect(requests).toHaveLength(1);
    core.methods.respond('d', requests[0]!.requestId, 204, Buffer.alloc(0));
    await expect(result).resolves.toEqual({ status: 204, payload: null });
  });

  test('DeviceNotOnline at once without a connect timeout, or once it passes', async () => {
    await expect(core.methods.invoke('d', call)).rejects.toMatchObject({ code: 'DeviceNotOnline' });
    const waiting = core.methods.invoke('d', { ...call, connectTimeoutMs: 3000 });
    clock.advance(3000);
    await expect(waiting).rejects.toMatchObject({ code: 'DeviceNotOnline' });
    listen('other'); // another device listening changes nothing
    await expect(core.methods.invoke('d', call)).rejects.toMatchObject({ code: 'DeviceNotOnline' });
  });

  test('a removed listener no longer receives calls; the newest listener wins', async () => {
    const first: MethodRequest[] = [];
    const stopFirst = core.methods.listen('d', (r) => first.push(r));
    const second = listen();
    stopFirst(); // the older connection leaving must not unregister the newer one
    void core.methods.invoke('d', call).catch(() => undefined);
    await settle();
    expect(first).toHaveLength(0);
    expect(second).toHaveLength(1);
    clock.advance(5000);
  });
});

describe('twins in the durable store', () => {
  let dataDir: string;
  let core: InspectableCore | undefined;
  const open = async (options: CreateCoreOptions = {}): Promise<InspectableCore> => {
    await core?.close();
    core = await createCore({ clock: new FakeClock(), dataDir, ...options });
    return core;
  };

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'iothub-twins-'));
  });
  afterEach(async () => {
    await core?.close();
    core = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('tags, desired and reported come back with versions and etag, also after a compaction', async () => {
    let c = await open({ storeTuning: { compactStateBytes: 4096 } });
    await c.registry.create({ deviceId: 'd' });
    await c.twins.update('d', { tags: { site: 'a' }, desired: { x: 1 } });
    for (let i = 0; i < 100; i++) await c.twins.updateReported('d', { counter: i });
    expect(c.storeStats().stateCompactions).toBeGreaterThan(0);
    const before = c.twins.get('d');
    c = await open();
    expect(c.twins.get('d')).toEqual(before);
    // Etags stay unique across reopening.
    const next = await c.twins.update('d', { tags: { site: 'b' } }, before!.etag);
    expect(next.etag).not.toBe(before!.etag);
  });

  test("a deleted device's twin is gone after reopening; the re-created device has a fresh one", async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'd' });
    await c.twins.update('d', { tags: { old: true } });
    await c.registry.delete('d');
    await c.registry.create({ deviceId: 'd' });
    c = await open();
    expect(c.twins.get('d')).toMatchObject({ tags: {}, version: 1 });
  });

  test('a refused change leaves the twin as it was', async () => {
    const c = await open();
    await c.registry.create({ deviceId: 'd' });
    const before = c.twins.get('d');
    await expect(c.twins.update('d', { desired: { 'a.b': 1 } })).rejects.toMatchObject({
      code: 'ArgumentInvalid',
    });
    await expect(c.twins.update('d', { tags: { x: 'y' } }, 'stale')).rejects.toMatchObject({
      code: 'PreconditionFailed',
    });
    expect(c.twins.get('d')).toEqual(before);
  });
});

describe('twin query evaluation', () => {
  const docs = [
    { deviceId: 'a', status: 'enabled', tags: { site: 'x' }, properties: { reported: { z: 1 } } },
    { deviceId: 'b', status: 'disabled', tags: {}, properties: { reported: { z: 'text' } } },
    { deviceId: 'c', status: 'enabled', tags: { site: 'y' }, properties: { reported: {} } },
  ];
  const ids = (query: string): unknown[] =>
    runTwinQuery(query, docs, 100).items.map((item) => item.deviceId);

  test.each([
    ["SELECT * FROM devices WHERE devices.status = 'enabled'", ['a', 'c']],
    ['SELECT * FROM devices WHERE IS_DEFINED(tags.site)', ['a', 'c']],
    ['SELECT * FROM devices WHERE NOT IS_DEFINED(properties.reported.z)', ['c']],
    // A comparison with a missing value or another type is false, as on IoT Hub.
    ['SELECT * FROM devices WHERE properties.reported.z > 0', ['a']],
    ["SELECT * FROM devices WHERE tags.site != 'x'", ['c']],
    ["SELECT * FROM devices WHERE STATUS = 'disabled'", ['b']],
  ])('%s', (query, expected) => {
    expect(ids(query)).toEqual(expected);
  });

  /** The code of the HubError a query throws. */
  const codeOf = (query: string): unknown => {
    try {
      runTwinQuery(query, docs, 10);
    } catch (error) {
      return (error as { code?: unknown }).code;
    }
    return undefined;
  };

  test('unsupported parts answer NotImplemented, broken text ArgumentInvalid', () => {
    expect(codeOf('SELECT * FROM devices.jobs')).toBe('NotImplemented');
    expect(codeOf("SELECT * FROM devices WHERE STARTSWITH(deviceId, 'a')")).toBe('NotImplemented');
    expect(codeOf("SELECT * FROM devices WHERE deviceId = 'a")).toBe('ArgumentInvalid');
    expect(codeOf('SELECT * FROM devices WHERE deviceId =')).toBe('ArgumentInvalid');
  });

  // Paging is the core's: the adapter only decodes x-ms-max-item-count and x-ms-continuation.
  test('pages hold the default 100 rows, a bad page size is refused before the query is read', () => {
    const many = Array.from({ length: 150 }, (_, i) => ({
      deviceId: `d${String(i).padStart(3, '0')}`,
    }));
    const first = runTwinQuery('SELECT * FROM devices', many);
    expect(first.items).toHaveLength(100);
    const second = runTwinQuery('SELECT * FROM devices', many, undefined, first.continuation);
    expect(second.items.map((d) => d.deviceId)).toEqual(many.slice(100).map((d) => d.deviceId));
    expect(second.continuation).toBeUndefined();
    for (const size of [0, 10_001, 2.5, Number.NaN]) {
      // The page size is refused (400, not the query's error) even though the text is no query.
      expect(() => runTwinQuery('not a query', many, size)).toThrow(
        'x-ms-max-item-count must be 1-10000',
      );
    }
    expect(runTwinQuery('SELECT * FROM devices', many, 10_000).items).toHaveLength(150);
  });
});

describe('twin section size (core)', () => {
  it('does not count any control character of a string, not only the first', () => {
    // 10 characters of text plus 20 control characters: 11 bytes with the key, under 12.
    const section = { k: `${'\u0001'.repeat(10)}abcde${'\u0002'.repeat(10)}fghij` };
    expect(() => assertSize(section, 'desired', 11)).not.toThrow();
    expect(() => assertSize(section, 'desired', 10)).toThrow(/over IoT Hub's limit of 10 bytes/);
  });
});
