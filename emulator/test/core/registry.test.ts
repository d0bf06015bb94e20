/**
 * The core's device registry, on both stores (see store-suite.ts): creation and its refusals,
 * updates with If-Match, the change events, deletion and the activity the connections report.
 */
import type { CoreContext } from './store-suite';
import {
  BATCH_DELAY,
  c2dInput,
  describeOnEachStore,
  drainFeedback,
  expectHubError,
} from './store-suite';

describeOnEachStore('registry', (ctx) => {
  createAndListTests(ctx);
  createRefusalTests(ctx);
  updateTests(ctx);
  deleteAndActivityTests(ctx);
});

/** What create makes, and what get, list and listUpTo return. */
function createAndListTests(ctx: CoreContext): void {
  test('create generates keys, etag and generation id; get and list return copies', async () => {
    const { core, clock } = ctx;
    const device = await core.registry.create({ deviceId: 'b-device' });
    await core.registry.create({ deviceId: 'a-device', status: 'disabled' });
    expect(Buffer.from(device.keys.primaryKey, 'base64')).toHaveLength(32);
    expect(Buffer.from(device.keys.secondaryKey, 'base64')).toHaveLength(32);
    expect(device.keys.primaryKey).not.toBe(device.keys.secondaryKey);
    expect(device.etag).not.toBe('');
    expect(device.generationId).toMatch(/^\d{18}$/);
    expect(device.status).toBe('enabled');
    expect(device.createdTime).toBe(new Date(clock.now()).toISOString());
    const got = core.registry.get('b-device')!;
    expect(got).toEqual(device);
    got.keys.primaryKey = 'tampered';
    expect(core.registry.get('b-device')!.keys.primaryKey).toBe(device.keys.primaryKey);
    expect(core.registry.list().map((d) => [d.deviceId, d.status])).toEqual([
      ['a-device', 'disabled'],
      ['b-device', 'enabled'],
    ]);
    expect(core.registry.get('missing')).toBeUndefined();
  });

  test('enabledGenerationId answers only for an existing, enabled device', async () => {
    const { core } = ctx;
    const enabled = await core.registry.create({ deviceId: 'on' });
    await core.registry.create({ deviceId: 'off', status: 'disabled' });
    expect(core.registry.enabledGenerationId('on')).toBe(enabled.generationId);
    expect(core.registry.enabledGenerationId('off')).toBeUndefined();
    expect(core.registry.enabledGenerationId('missing')).toBeUndefined();
    await core.registry.update('on', { status: 'disabled' });
    expect(core.registry.enabledGenerationId('on')).toBeUndefined();
  });

  // GET /devices?top= : the limit is the core's; the adapter only decodes the number.
  test('listUpTo lists the first top devices by id, 1000 at most, and refuses other tops', async () => {
    const { core } = ctx;
    for (const deviceId of ['c', 'a', 'b']) await core.registry.create({ deviceId });
    expect(core.registry.listUpTo(2).map((d) => d.deviceId)).toEqual(['a', 'b']);
    expect(core.registry.listUpTo().map((d) => d.deviceId)).toEqual(['a', 'b', 'c']);
    expect(core.registry.listUpTo(1000)).toHaveLength(3);
    for (const top of [0, 1001, 1.5, Number.NaN]) {
      expect(() => core.registry.listUpTo(top)).toThrow('top must be 1-1000');
    }
  });
}

/** Ids, keys and duplicates that create refuses. */
function createRefusalTests(ctx: CoreContext): void {
  test('device ids follow IoT Hub rules', async () => {
    const { core } = ctx;
    const valid = ["a-b:c.d+e%f_g#h*i?j!k(l)m,n=o@pq$r's", 'x'.repeat(128), '0'];
    for (const deviceId of valid) {
      await expect(core.registry.create({ deviceId })).resolves.toMatchObject({ deviceId });
    }
    for (const deviceId of ['', 'x'.repeat(129), 'a/b', 'a b', 'é', 'a&b', 'a\\b', 'a;b']) {
      await expectHubError(core.registry.create({ deviceId }), 'ArgumentInvalid');
    }
  });

  test('supplied keys must be base64 of 16-64 bytes and never appear in errors', async () => {
    const { core } = ctx;
    const key16 = Buffer.alloc(16, 1).toString('base64');
    const key64 = Buffer.alloc(64, 2).toString('base64');
    const created = await core.registry.create({
      deviceId: 'keyed',
      keys: { primaryKey: key16, secondaryKey: key64 },
    });
    expect(created.keys).toEqual({ primaryKey: key16, secondaryKey: key64 });
    const partial = await core.registry.create({
      deviceId: 'half',
      keys: { primaryKey: key16 },
    });
    expect(partial.keys.primaryKey).toBe(key16);
    expect(Buffer.from(partial.keys.secondaryKey, 'base64')).toHaveLength(32);
    const bad = [
      Buffer.alloc(15).toString('base64'),
      Buffer.alloc(65).toString('base64'),
      'not base64!!',
      'QUJD', // 3 bytes
    ];
    for (const primaryKey of bad) {
      const attempt = core.registry.create({ deviceId: 'bad-key', keys: { primaryKey } });
      await expectHubError(attempt, 'ArgumentInvalid');
      await attempt.catch((error: Error) => expect(error.message).not.toContain(primaryKey));
    }
    expect(core.registry.get('bad-key')).toBeUndefined();
  });

  test('a duplicate id is refused, also when created concurrently', async () => {
    const { core } = ctx;
    await core.registry.create({ deviceId: 'dup' });
    await expectHubError(core.registry.create({ deviceId: 'dup' }), 'DeviceAlreadyExists');
    const results = await Promise.allSettled([
      core.registry.create({ deviceId: 'race' }),
      core.registry.create({ deviceId: 'race' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });
}

/** Updates, their etags and If-Match, and the change events they fire. */
function updateTests(ctx: CoreContext): void {
  test('update changes the etag and honours If-Match', async () => {
    const { core } = ctx;
    const created = await core.registry.create({ deviceId: 'upd' });
    const disabled = await core.registry.update(
      'upd',
      { status: 'disabled', statusReason: 'maintenance' },
      created.etag,
    );
    expect(disabled.etag).not.toBe(created.etag);
    expect(disabled).toMatchObject({ status: 'disabled', statusReason: 'maintenance' });
    expect(disabled.keys).toEqual(created.keys);
    expect(disabled.generationId).toBe(created.generationId);
    await expectHubError(
      core.registry.update('upd', { status: 'enabled' }, created.etag),
      'PreconditionFailed',
    );
    const quoted = await core.registry.update('upd', { status: 'enabled' }, `"${disabled.etag}"`);
    const star = await core.registry.update('upd', { statusReason: null }, '*');
    const any = await core.registry.update('upd', {});
    expect(new Set([created.etag, disabled.etag, quoted.etag, star.etag, any.etag]).size).toBe(5);
    await expectHubError(core.registry.update('nope', {}), 'DeviceNotFound');
    await expectHubError(
      core.registry.update('upd', { status: 'paused' as 'enabled' }),
      'ArgumentInvalid',
    );
  });

  test('onDeviceChanged fires on disable, re-key and delete only', async () => {
    const { core } = ctx;
    const events: [string, string | undefined][] = [];
    const off = core.registry.onDeviceChanged((id, device) => events.push([id, device?.status]));
    await core.registry.create({ deviceId: 'watched' });
    await core.registry.update('watched', { statusReason: 'just a note' });
    await core.registry.update('watched', { status: 'disabled' });
    await core.registry.update('watched', { status: 'enabled' });
    await core.registry.update('watched', {
      keys: { primaryKey: Buffer.alloc(32, 7).toString('base64') },
    });
    await core.registry.delete('watched');
    expect(events).toEqual([
      ['watched', 'disabled'],
      ['watched', 'enabled'],
      ['watched', undefined],
    ]);
    off();
    await core.registry.create({ deviceId: 'watched' });
    await core.registry.delete('watched');
    expect(events).toHaveLength(3);
  });
}

/** Deleting a device, and its connection state and activity. */
function deleteAndActivityTests(ctx: CoreContext): void {
  test('delete honours If-Match, purges the queue and forgets the device', async () => {
    const { core, clock } = ctx;
    const device = await core.registry.create({ deviceId: 'gone' });
    await core.c2d.enqueue('gone', c2dInput({ ack: 'full', messageId: 'm1' }));
    await expectHubError(core.registry.delete('gone', 'stale'), 'PreconditionFailed');
    await core.registry.delete('gone', device.etag);
    expect(core.registry.get('gone')).toBeUndefined();
    expect(core.c2d.depth('gone')).toBe(0);
    await expectHubError(core.registry.delete('gone'), 'DeviceNotFound');
    clock.advance(BATCH_DELAY);
    const records = await drainFeedback(core);
    expect(records).toEqual([
      expect.objectContaining({
        originalMessageId: 'm1',
        statusCode: 'Purged',
        deviceGenerationId: device.generationId,
      }),
    ]);
    // A new device with the same id starts afresh.
    const again = await core.registry.create({ deviceId: 'gone' });
    expect(again.generationId).not.toBe(device.generationId);
  });

  test('activity tracks connection state and queue depth', async () => {
    const { core, clock } = ctx;
    await core.registry.create({ deviceId: 'act' });
    expect(core.registry.activity('act')).toEqual({
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: '0001-01-01T00:00:00Z',
      lastActivityTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
    });
    clock.advance(5000);
    core.registry.setConnected('act', true);
    await core.c2d.enqueue('act', c2dInput());
    const connectedAt = new Date(clock.now()).toISOString();
    expect(core.registry.activity('act')).toEqual({
      connectionState: 'Connected',
      connectionStateUpdatedTime: connectedAt,
      lastActivityTime: connectedAt,
      cloudToDeviceMessageCount: 1,
    });
    clock.advance(1000);
    core.registry.recordActivity('act');
    expect(core.registry.activity('act').lastActivityTime).toBe(
      new Date(clock.now()).toISOString(),
    );
    core.registry.setConnected('act', false);
    expect(core.registry.activity('act').connectionState).toBe('Disconnected');
  });
}
