/**
 * The abstract core/store suite: the same behaviour asserted against the in-memory store and the
 * durable store (in a temp dir). Time is a FakeClock throughout; nothing sleeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock';
import type {
  AckMode,
  C2DMessageInput,
  FeedbackRecord,
  FeedbackStatusCode,
  TelemetryInput,
} from '../../core/contracts';
import { HubError } from '../../core/contracts';
import type { CreateCoreOptions, InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';
import { D2CPartitions } from '../../core/d2c-partitions';
import { createMemoryStore } from '../../core/memory-store';

type CoreFactory = (options: CreateCoreOptions) => Promise<InspectableCore>;

const HOUR = 60 * 60 * 1000;
const BATCH_DELAY = 1000;

async function expectHubError(promise: Promise<unknown>, code: HubError['code']): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(HubError);
  await expect(promise).rejects.toMatchObject({ code });
}

function c2dInput(overrides: Partial<C2DMessageInput> = {}): C2DMessageInput {
  return { ack: 'none', properties: {}, body: Buffer.from('hello'), ...overrides };
}

function telemetry(deviceId: string, text = 'reading'): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from(text),
    properties: { kind: 'test' },
    generationId: '1',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  };
}

/** Every record in every closed batch, taking and settling them. */
async function drainFeedback(core: InspectableCore): Promise<FeedbackRecord[]> {
  const records: FeedbackRecord[] = [];
  for (let batch = core.feedback.take(); batch; batch = core.feedback.take()) {
    records.push(...batch.records);
    await core.feedback.settle(batch.batchId);
  }
  return records;
}

function coreSuite(name: string, factory: CoreFactory): void {
  describe(`core (${name} store)`, () => {
    let clock: FakeClock;
    let core: InspectableCore;
    const open = async (options: CreateCoreOptions = {}): Promise<InspectableCore> => {
      core = await factory({ clock, feedbackBatchDelayMs: BATCH_DELAY, ...options });
      return core;
    };

    beforeEach(async () => {
      clock = new FakeClock();
      await open();
    });
    afterEach(async () => {
      await core.close();
    });

    describe('registry', () => {
      test('create generates keys, etag and generation id; get and list return copies', async () => {
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

      // GET /devices?top= : the limit is the core's; the adapter only decodes the number.
      test('listUpTo lists the first top devices by id, 1000 at most, and refuses other tops', async () => {
        for (const deviceId of ['c', 'a', 'b']) await core.registry.create({ deviceId });
        expect(core.registry.listUpTo(2).map((d) => d.deviceId)).toEqual(['a', 'b']);
        expect(core.registry.listUpTo().map((d) => d.deviceId)).toEqual(['a', 'b', 'c']);
        expect(core.registry.listUpTo(1000)).toHaveLength(3);
        for (const top of [0, 1001, 1.5, Number.NaN]) {
          expect(() => core.registry.listUpTo(top)).toThrow('top must be 1-1000');
        }
      });

      test('device ids follow IoT Hub rules', async () => {
        const valid = ["a-b:c.d+e%f_g#h*i?j!k(l)m,n=o@pq$r's", 'x'.repeat(128), '0'];
        for (const deviceId of valid) {
          await expect(core.registry.create({ deviceId })).resolves.toMatchObject({ deviceId });
        }
        for (const deviceId of ['', 'x'.repeat(129), 'a/b', 'a b', 'é', 'a&b', 'a\\b', 'a;b']) {
          await expectHubError(core.registry.create({ deviceId }), 'ArgumentInvalid');
        }
      });

      test('supplied keys must be base64 of 16-64 bytes and never appear in errors', async () => {
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
        await core.registry.create({ deviceId: 'dup' });
        await expectHubError(core.registry.create({ deviceId: 'dup' }), 'DeviceAlreadyExists');
        const results = await Promise.allSettled([
          core.registry.create({ deviceId: 'race' }),
          core.registry.create({ deviceId: 'race' }),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      });

      test('update changes the etag and honours If-Match', async () => {
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
        const quoted = await core.registry.update(
          'upd',
          { status: 'enabled' },
          `"${disabled.etag}"`,
        );
        const star = await core.registry.update('upd', { statusReason: null }, '*');
        const any = await core.registry.update('upd', {});
        expect(new Set([created.etag, disabled.etag, quoted.etag, star.etag, any.etag]).size).toBe(
          5,
        );
        await expectHubError(core.registry.update('nope', {}), 'DeviceNotFound');
        await expectHubError(
          core.registry.update('upd', { status: 'paused' as 'enabled' }),
          'ArgumentInvalid',
        );
      });

      test('onDeviceChanged fires on disable, re-key and delete only', async () => {
        const events: [string, string | undefined][] = [];
        const off = core.registry.onDeviceChanged((id, device) =>
          events.push([id, device?.status]),
        );
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

      test('delete honours If-Match, purges the queue and forgets the device', async () => {
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
    });

    describe('cloud-to-device queues', () => {
      beforeEach(async () => {
        await core.registry.create({ deviceId: 'dev' });
      });

      test('enqueue assigns ids, TTL and addressing; unknown devices and big bodies fail', async () => {
        const message = await core.c2d.enqueue(
          'dev',
          c2dInput({
            correlationId: 'c1',
            contentType: 'application/json',
            properties: { a: '1' },
          }),
        );
        expect(message.messageId).toMatch(/^[0-9a-f-]{36}$/);
        expect(message).toMatchObject({
          deviceId: 'dev',
          correlationId: 'c1',
          contentType: 'application/json',
          properties: { a: '1' },
          enqueuedTime: clock.now(),
          expiryTime: clock.now() + HOUR,
          deliveryCount: 0,
          to: '/devices/dev/messages/devicebound',
        });
        const explicit = await core.c2d.enqueue(
          'dev',
          c2dInput({ messageId: 'mine', expiryTime: clock.now() + 5000 }),
        );
        expect(explicit).toMatchObject({ messageId: 'mine', expiryTime: clock.now() + 5000 });
        expect(explicit.lockToken).not.toBe(message.lockToken);
        await expectHubError(core.c2d.enqueue('ghost', c2dInput()), 'DeviceNotFound');
        // 64 KB counts the body, the system property values ('big', the 33-byte `to`) and the
        // property names and values ('k' + 'v').
        const atLimit = (extra: number): C2DMessageInput =>
          c2dInput({
            messageId: 'big',
            properties: { k: 'v' },
            body: Buffer.alloc(64 * 1024 - 3 - 33 - 2 + extra),
          });
        await expect(core.c2d.enqueue('dev', atLimit(0))).resolves.toBeDefined();
        await expectHubError(core.c2d.enqueue('dev', atLimit(1)), 'MessageTooLarge');
        await expectHubError(
          core.c2d.enqueue('dev', c2dInput({ properties: { note: 'not allowed' } })),
          'ArgumentInvalid',
        );
        await expectHubError(
          core.c2d.enqueue('dev', c2dInput({ properties: { 'k/1': 'v' } })),
          'ArgumentInvalid',
        );
        expect(core.c2d.depth('dev')).toBe(3);
      });

      test('a queue holds at most 50 messages, also under concurrent sends', async () => {
        expect(core.c2d.maxQueueDepth).toBe(50);
        const results = await Promise.allSettled(
          Array.from({ length: 60 }, (_, i) =>
            core.c2d.enqueue('dev', c2dInput({ messageId: `m${i}` })),
          ),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
        for (const r of results.filter((x) => x.status === 'rejected')) {
          expect(r.reason).toMatchObject({
            code: 'DeviceMaximumQueueDepthExceeded',
          });
        }
        expect(core.c2d.depth('dev')).toBe(50);
        // Completing one makes room for one.
        const locked = core.c2d.lockNext('dev')!;
        await core.c2d.complete('dev', locked.lockToken);
        await core.c2d.enqueue('dev', c2dInput());
        await expectHubError(
          core.c2d.enqueue('dev', c2dInput()),
          'DeviceMaximumQueueDepthExceeded',
        );
      });

      test('lockNext delivers in order, locks, and counts deliveries', async () => {
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'first' }));
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'second' }));
        const a = core.c2d.lockNext('dev')!;
        expect(a).toMatchObject({ messageId: 'first', deliveryCount: 1 });
        const b = core.c2d.lockNext('dev')!;
        expect(b).toMatchObject({ messageId: 'second', deliveryCount: 1 });
        expect(core.c2d.lockNext('dev')).toBeUndefined();
        expect(core.c2d.depth('dev')).toBe(2);
        await core.c2d.abandon('dev', a.lockToken);
        expect(core.c2d.lockNext('dev')).toMatchObject({ messageId: 'first', deliveryCount: 2 });
        await core.c2d.complete('dev', b.lockToken);
        expect(core.c2d.depth('dev')).toBe(1);
        await expectHubError(core.c2d.complete('dev', b.lockToken), 'PreconditionFailed');
        await expectHubError(core.c2d.complete('dev', 'no-such-token'), 'PreconditionFailed');
        await expectHubError(core.c2d.complete('ghost', 'x'), 'DeviceNotFound');
        expect(core.c2d.lockNext('ghost')).toBeUndefined();
      });

      test('onAvailable fires on enqueue and abandon', async () => {
        const seen: string[] = [];
        const off = core.c2d.onAvailable((id) => seen.push(id));
        await core.c2d.enqueue('dev', c2dInput());
        const m = core.c2d.lockNext('dev')!;
        await core.c2d.abandon('dev', m.lockToken);
        expect(seen).toEqual(['dev', 'dev']);
        off();
        await core.c2d.enqueue('dev', c2dInput());
        expect(seen).toHaveLength(2);
      });

      test('a timed lock (HTTPS) ends by itself: the message comes back and the delivery counts', async () => {
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'polled' }));
        const first = core.c2d.lockNext('dev', 60_000)!;
        clock.advance(59_999);
        expect(core.c2d.lockNext('dev')).toBeUndefined();
        clock.advance(1);
        await expectHubError(core.c2d.complete('dev', first.lockToken), 'PreconditionFailed');
        const second = core.c2d.lockNext('dev', 60_000)!;
        expect(second).toMatchObject({ messageId: 'polled', deliveryCount: 2 });
        // Each delivery has its own lock: the lost one cannot settle the new delivery.
        expect(second.lockToken).not.toBe(first.lockToken);
        await expectHubError(core.c2d.complete('dev', first.lockToken), 'PreconditionFailed');
        // Settled in time: the old timer must not unlock it later.
        await core.c2d.complete('dev', second.lockToken);
        clock.advance(60_000);
        expect(core.c2d.depth('dev')).toBe(0);
      });

      test('a lock held by a connection (no timeout) never ends by itself', async () => {
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'held' }));
        const held = core.c2d.lockNext('dev')!;
        clock.advance(HOUR / 2);
        expect(core.c2d.lockNext('dev')).toBeUndefined();
        await core.c2d.complete('dev', held.lockToken);
      });

      test('the tenth abandon drops the message with DeliveryCountExceeded', async () => {
        expect(core.c2d.maxDeliveryCount).toBe(10);
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'bouncy', ack: 'negative' }));
        for (let i = 1; i <= 10; i++) {
          const m = core.c2d.lockNext('dev')!;
          expect(m.deliveryCount).toBe(i);
          await core.c2d.abandon('dev', m.lockToken);
        }
        expect(core.c2d.lockNext('dev')).toBeUndefined();
        expect(core.c2d.depth('dev')).toBe(0);
        clock.advance(BATCH_DELAY);
        expect(await drainFeedback(core)).toEqual([
          expect.objectContaining({
            originalMessageId: 'bouncy',
            deviceId: 'dev',
            statusCode: 'DeliveryCountExceeded',
          }),
        ]);
      });

      test('expiry is noticed lazily and by the clock, with Expired feedback', async () => {
        await core.c2d.enqueue(
          'dev',
          c2dInput({ messageId: 'short', ack: 'full', expiryTime: clock.now() + 1000 }),
        );
        await core.c2d.enqueue('dev', c2dInput({ messageId: 'default', ack: 'negative' }));
        clock.advance(999);
        expect(core.c2d.depth('dev')).toBe(2);
        clock.advance(1);
        // The timer already removed it; nobody called lockNext or depth for this device.
        clock.advance(BATCH_DELAY);
        let records = await drainFeedback(core);
        expect(records).toEqual([
          expect.objectContaining({ originalMessageId: 'short', statusCode: 'Expired' }),
        ]);
        expect(core.c2d.depth('dev')).toBe(1);
        clock.advance(HOUR);
        expect(core.c2d.lockNext('dev')).toBeUndefined();
        clock.advance(BATCH_DELAY);
        records = await drainFeedback(core);
        expect(records.map((r) => [r.originalMessageId, r.statusCode])).toEqual([
          ['default', 'Expired'],
        ]);
      });

      test('an offline device (never connected) gets Expired feedback through the timer', async () => {
        await core.registry.create({ deviceId: 'offline' });
        await core.c2d.enqueue('offline', c2dInput({ messageId: 'late', ack: 'full' }));
        clock.advance(HOUR + BATCH_DELAY);
        expect(core.feedback.take()?.records).toEqual([
          expect.objectContaining({
            originalMessageId: 'late',
            deviceId: 'offline',
            statusCode: 'Expired',
          }),
        ]);
      });

      test.each<[AckMode, FeedbackStatusCode[]]>([
        ['none', []],
        ['positive', ['Success']],
        ['negative', ['Rejected', 'Purged', 'Expired', 'DeliveryCountExceeded']],
        ['full', ['Success', 'Rejected', 'Purged', 'Expired', 'DeliveryCountExceeded']],
      ])('ack mode %s yields feedback %j', async (ack, expected) => {
        const generationId = core.registry.get('dev')!.generationId;
        // Success
        await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'ok' }));
        await core.c2d.complete('dev', core.c2d.lockNext('dev')!.lockToken);
        // Rejected
        await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'no' }));
        await core.c2d.reject('dev', core.c2d.lockNext('dev')!.lockToken);
        // Purged
        await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'p1' }));
        await expect(core.c2d.purge('dev')).resolves.toBe(1);
        // Expired
        await core.c2d.enqueue(
          'dev',
          c2dInput({ ack, messageId: 'old', expiryTime: clock.now() + 10 }),
        );
        clock.advance(10);
        expect(core.c2d.depth('dev')).toBe(0);
        // DeliveryCountExceeded
        const strict = core;
        await strict.c2d.enqueue('dev', c2dInput({ ack, messageId: 'tired' }));
        for (let i = 0; i < 10; i++)
          await strict.c2d.abandon('dev', strict.c2d.lockNext('dev')!.lockToken);
        clock.advance(BATCH_DELAY);
        const records = await drainFeedback(core);
        expect(records.map((r) => r.statusCode)).toEqual(expected);
        for (const r of records) {
          expect(r).toMatchObject({ deviceId: 'dev', deviceGenerationId: generationId });
          expect(r.description).not.toBe('');
          expect(Date.parse(r.enqueuedTimeUtc)).not.toBeNaN();
        }
      });

      test('deadLetter removes only that message, with DeliveryCountExceeded and the reason', async () => {
        await core.c2d.enqueue('dev', c2dInput({ ack: 'negative', messageId: 'bad' }));
        await core.c2d.enqueue('dev', c2dInput({ ack: 'negative', messageId: 'good' }));
        const bad = core.c2d.lockNext('dev')!;
        await core.c2d.deadLetter('dev', bad.lockToken, 'topic too long');
        expect(core.c2d.depth('dev')).toBe(1);
        expect(core.c2d.lockNext('dev')?.messageId).toBe('good');
        clock.advance(BATCH_DELAY);
        expect(await drainFeedback(core)).toEqual([
          expect.objectContaining({
            originalMessageId: 'bad',
            statusCode: 'DeliveryCountExceeded',
            description: 'topic too long',
          }),
        ]);
        await expectHubError(
          core.c2d.deadLetter('dev', bad.lockToken, 'again'),
          'PreconditionFailed',
        );
      });

      test('purge removes queued and locked messages and reports how many', async () => {
        for (let i = 0; i < 3; i++) await core.c2d.enqueue('dev', c2dInput({ ack: 'full' }));
        const locked = core.c2d.lockNext('dev')!;
        await expect(core.c2d.purge('dev')).resolves.toBe(3);
        expect(core.c2d.depth('dev')).toBe(0);
        await expectHubError(core.c2d.complete('dev', locked.lockToken), 'PreconditionFailed');
        await expect(core.c2d.purge('dev')).resolves.toBe(0);
        await expectHubError(core.c2d.purge('ghost'), 'DeviceNotFound');
      });
    });

    describe('feedback batching', () => {
      beforeEach(async () => {
        await core.registry.create({ deviceId: 'fb' });
      });

      async function produceRecords(count: number): Promise<void> {
        for (let i = 0; i < count; i++) {
          await core.c2d.enqueue('fb', c2dInput({ ack: 'full', messageId: `r${i}` }));
          await core.c2d.complete('fb', core.c2d.lockNext('fb')!.lockToken);
        }
      }

      test('a batch closes at 64 records without waiting', async () => {
        await produceRecords(130);
        const first = core.feedback.take()!;
        const second = core.feedback.take()!;
        expect(first.records).toHaveLength(64);
        expect(second.records).toHaveLength(64);
        expect(first.records[0]!.originalMessageId).toBe('r0');
        expect(second.records[0]!.originalMessageId).toBe('r64');
        expect(core.feedback.take()).toBeUndefined();
        clock.advance(BATCH_DELAY);
        expect(core.feedback.take()!.records.map((r) => r.originalMessageId)).toEqual([
          'r128',
          'r129',
        ]);
      });

      test('a partial batch closes the batch delay after its first record', async () => {
        const available = jest.fn();
        core.feedback.onAvailable(available);
        await produceRecords(1);
        clock.advance(BATCH_DELAY / 2);
        await produceRecords(1);
        clock.advance(BATCH_DELAY / 2 - 1);
        expect(core.feedback.take()).toBeUndefined();
        clock.advance(1);
        await Promise.resolve();
        expect(available).toHaveBeenCalledTimes(1);
        const batch = core.feedback.take()!;
        expect(batch.records).toHaveLength(2);
        expect(batch.enqueuedTime).toBe(clock.now());
      });

      test('take hands a batch out once; release returns it; settle removes it', async () => {
        await produceRecords(1);
        clock.advance(BATCH_DELAY);
        const batch = core.feedback.take()!;
        expect(core.feedback.take()).toBeUndefined();
        const available = jest.fn();
        core.feedback.onAvailable(available);
        core.feedback.release(batch.batchId);
        expect(available).toHaveBeenCalledTimes(1);
        const again = core.feedback.take()!;
        expect(again).toEqual(batch);
        await core.feedback.settle(again.batchId);
        core.feedback.release(again.batchId);
        expect(core.feedback.take()).toBeUndefined();
      });
    });

    describe('device-to-cloud partitions', () => {
      test('devices map onto partitions stably and spread over all of them', () => {
        expect(core.d2c.partitionIds).toEqual(['0', '1', '2', '3']);
        const used = new Set<string>();
        for (let i = 0; i < 100; i++) {
          const p = core.d2c.partitionOf(`device-${i}`);
          expect(core.d2c.partitionIds).toContain(p);
          expect(core.d2c.partitionOf(`device-${i}`)).toBe(p);
          used.add(p);
        }
        expect(used.size).toBe(4);
      });

      test('the partition count is configurable', async () => {
        await core.close();
        await open({ partitionCount: 2 });
        expect(core.d2c.partitionIds).toEqual(['0', '1']);
      });

      test('appends get per-partition sequence numbers, offsets and enqueued times', async () => {
        const listener = jest.fn();
        core.d2c.onAppend(listener);
        const p = core.d2c.partitionOf('d1');
        const other = ['d2', 'd3', 'd4', 'd5', 'd6'].find((d) => core.d2c.partitionOf(d) !== p)!;
        const e0 = await core.d2c.append(telemetry('d1', 'a'));
        clock.advance(10);
        const e1 = await core.d2c.append({
          ...telemetry('d1', 'b'),
          messageId: 'm',
          contentType: 'text/plain',
        });
        const o0 = await core.d2c.append(telemetry(other));
        expect(e0).toMatchObject({ partitionId: p, sequenceNumber: 0, offset: '0' });
        expect(e1).toMatchObject({
          partitionId: p,
          sequenceNumber: 1,
          offset: '1',
          messageId: 'm',
        });
        expect(e1.enqueuedTime).toBe(e0.enqueuedTime + 10);
        expect(o0).toMatchObject({ sequenceNumber: 0, offset: '0' });
        expect(listener.mock.calls.map((c: unknown[]) => c[0])).toEqual([e0, e1, o0]);
        const read = core.d2c.read(p, 0, 10);
        expect(read.map((e) => e.body.toString())).toEqual(['a', 'b']);
        expect(read[1]).toMatchObject({ contentType: 'text/plain', properties: { kind: 'test' } });
        expect(core.d2c.read(p, 1, 10)).toHaveLength(1);
        expect(core.d2c.read(p, 0, 1)).toHaveLength(1);
        expect(core.d2c.read(p, 2, 10)).toHaveLength(0);
        expect(core.d2c.info(p)).toEqual({
          partitionId: p,
          beginSequenceNumber: 0,
          lastEnqueuedSequenceNumber: 1,
          lastEnqueuedOffset: '1',
          lastEnqueuedTime: e1.enqueuedTime,
          isEmpty: false,
        });
        expect(core.d2c.sequenceNumberAtTime(p, e0.enqueuedTime)).toBe(0);
        expect(core.d2c.sequenceNumberAtTime(p, e0.enqueuedTime + 1)).toBe(1);
        expect(core.d2c.sequenceNumberAtTime(p, e1.enqueuedTime + 1)).toBe(2);
      });

      test('an untouched partition reports itself empty', () => {
        expect(core.d2c.info('2')).toEqual({
          partitionId: '2',
          beginSequenceNumber: -1,
          lastEnqueuedSequenceNumber: -1,
          lastEnqueuedOffset: '-1',
          lastEnqueuedTime: 0,
          isEmpty: true,
        });
        expect(core.d2c.sequenceNumberAtTime('2', 0)).toBe(0);
        expect(() => core.d2c.info('9')).toThrow(HubError);
      });

      test('retention drops old events but sequence numbers go on', async () => {
        await core.close();
        await open({ retentionMs: 1000 });
        const p = core.d2c.partitionOf('r');
        await core.d2c.append(telemetry('r', 'old'));
        clock.advance(600);
        await core.d2c.append(telemetry('r', 'newer'));
        clock.advance(500);
        expect(core.d2c.read(p, 0, 10).map((e) => e.body.toString())).toEqual(['newer']);
        expect(core.d2c.info(p)).toMatchObject({ beginSequenceNumber: 1, isEmpty: false });
        clock.advance(1000);
        expect(core.d2c.read(p, 0, 10)).toEqual([]);
        expect(core.d2c.info(p)).toMatchObject({
          beginSequenceNumber: 2,
          lastEnqueuedSequenceNumber: 1,
          isEmpty: true,
        });
        const next = await core.d2c.append(telemetry('r', 'fresh'));
        expect(next.sequenceNumber).toBe(2);
      });

      test('many concurrent appends keep per-partition order', async () => {
        const sent = await Promise.all(
          Array.from({ length: 400 }, (_, i) =>
            core.d2c.append(telemetry(`dev-${i % 7}`, String(i))),
          ),
        );
        for (const p of core.d2c.partitionIds) {
          const events = core.d2c.read(p, 0, 1000);
          expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i));
          const expected = sent.filter((e) => e.partitionId === p).map((e) => e.body.toString());
          expect(events.map((e) => e.body.toString())).toEqual(expected);
        }
        expect(core.storeStats().eventsWritten).toBe(400);
      });
    });
  });
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

coreSuite('in-memory', (options) => createCore(options));
coreSuite('durable', (options) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'iothub-core-'));
  tempDirs.push(dataDir);
  return createCore({ ...options, dataDir });
});

describe('D2C visibility order', () => {
  test('events become visible in sequence order even when the store finishes out of order', async () => {
    const finishers: (() => void)[] = [];
    const store = {
      ...createMemoryStore(),
      appendEvent: () => new Promise<void>((resolve) => finishers.push(resolve)),
    };
    const d2c = new D2CPartitions(
      { clock: new FakeClock(), store, partitionCount: 1, retentionMs: HOUR },
      new Map(),
    );
    const seen: number[] = [];
    d2c.onAppend((event) => seen.push(event.sequenceNumber));
    const resolved: number[] = [];
    const appends = [0, 1, 2].map((i) =>
      d2c.append(telemetry('dev', String(i))).then((e) => resolved.push(e.sequenceNumber)),
    );
    finishers[2]!();
    finishers[1]!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([]);
    expect(d2c.read('0', 0, 10)).toEqual([]);
    finishers[0]!();
    await Promise.all(appends);
    expect(seen).toEqual([0, 1, 2]);
    expect(resolved).toEqual([0, 1, 2]);
    expect(d2c.read('0', 0, 10).map((e) => e.body.toString())).toEqual(['0', '1', '2']);
  });
});
