/**
 * What only the durable store promises: state and telemetry survive a reopen on the same folder,
 * a torn or corrupt tail is cut off without failing start-up, concurrent writes share fsyncs,
 * and the files stay bounded (segments past retention deleted, the state log compacted).
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock';
import type { TelemetryInput } from '../../core/contracts';
import type { CreateCoreOptions, InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';

const BATCH_DELAY = 1000;

function telemetry(deviceId: string, text: string): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from(text),
    properties: { 'needs escaping&=/': 'ü value' },
    messageId: `m-${text}`,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    generationId: '42',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  };
}

/** What a group's tests see: the current test's clock and store folder, and its core. */
interface DurableContext {
  /** A new FakeClock for each test. */
  readonly clock: FakeClock;
  storeDir(): string;
  /** The telemetry segment files in the store folder. */
  segments(): string[];
  /** Closes the test's core (if any) and opens a new one on the same folder and clock. */
  open(options?: CreateCoreOptions): Promise<InspectableCore>;
  /** Drops the test's core without closing it, for a core that is closed already. */
  forget(): void;
}

describe('durable store', () => {
  const ctx = openInTempDirEachTest();
  restartRegistryAndTelemetryTests(ctx);
  restartC2DAndFeedbackTests(ctx);
  damagedTailTests(ctx);
  groupCommitAndRolloverTests(ctx);
  compactionAndLayoutTests(ctx);
});

/** Each test gets a temp data folder and a FakeClock; after it, its core is closed, the folder gone. */
function openInTempDirEachTest(): DurableContext {
  let dataDir: string;
  let clock: FakeClock;
  let core: InspectableCore | undefined;
  const storeDir = (): string => join(dataDir, 'store');
  const segments = (): string[] => readdirSync(storeDir()).filter((n) => n.startsWith('d2c-'));

  async function open(options: CreateCoreOptions = {}): Promise<InspectableCore> {
    await core?.close();
    core = await createCore({ clock, dataDir, feedbackBatchDelayMs: BATCH_DELAY, ...options });
    return core;
  }

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'iothub-durable-'));
    clock = new FakeClock();
  });
  afterEach(async () => {
    await core?.close();
    core = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    get clock(): FakeClock {
      return clock;
    },
    storeDir,
    segments,
    open,
    forget: () => {
      core = undefined;
    },
  };
}

/** Devices and telemetry as they were before a reopen. */
function restartRegistryAndTelemetryTests(ctx: DurableContext): void {
  const { open } = ctx;

  test('devices come back with the same keys, etags and generation ids', async () => {
    let c = await open();
    const a = await c.registry.create({ deviceId: 'alpha' });
    await c.registry.create({ deviceId: 'beta' });
    const b = await c.registry.update('beta', { status: 'disabled', statusReason: 'why' });
    await c.registry.create({ deviceId: 'gamma' });
    await c.registry.delete('gamma');
    c = await open();
    expect(c.registry.list()).toEqual([a, b]);
    // Etags stay unique across restarts.
    const updated = await c.registry.update('alpha', { status: 'disabled' }, a.etag);
    expect([a.etag, b.etag]).not.toContain(updated.etag);
    c = await open();
    expect(c.registry.get('alpha')).toEqual(updated);
  });

  test('a device deleted and at once re-created is the new one after reopening', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'phoenix' });
    await c.c2d.enqueue('phoenix', { ack: 'none', properties: {}, body: Buffer.from('old') });
    const deleting = c.registry.delete('phoenix');
    const reborn = await c.registry.create({ deviceId: 'phoenix' });
    await deleting;
    c = await open();
    expect(c.registry.get('phoenix')).toEqual(reborn);
    expect(c.c2d.depth('phoenix')).toBe(0);
  });

  test('all telemetry is readable from the earliest position after reopening', async () => {
    let c = await open();
    const sent = await Promise.all(
      Array.from({ length: 200 }, (_, i) => c.d2c.append(telemetry(`dev-${i % 9}`, String(i)))),
    );
    c = await open();
    for (const p of c.d2c.partitionIds) {
      const expected = sent.filter((e) => e.partitionId === p);
      expect(c.d2c.read(p, 0, 1000)).toEqual(expected);
      expect(c.d2c.info(p).lastEnqueuedSequenceNumber).toBe(expected.length - 1);
    }
    const next = await c.d2c.append(telemetry('dev-0', 'after'));
    const before = sent.filter((e) => e.partitionId === next.partitionId);
    expect(next.sequenceNumber).toBe(before.length);
  });
}

/** C2D queues and pending feedback across a reopen. */
function restartC2DAndFeedbackTests(ctx: DurableContext): void {
  const { open } = ctx;

  test('queued C2D messages and their delivery counts survive; locks do not', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'dev' });
    const first = await c.c2d.enqueue('dev', {
      ack: 'full',
      messageId: 'one',
      properties: { p: 'v' },
      body: Buffer.from([0, 1, 2, 255]),
      expiryTime: ctx.clock.now() + 60_000,
    });
    await c.c2d.enqueue('dev', { ack: 'none', properties: {}, body: Buffer.from('two') });
    await c.c2d.enqueue('dev', { ack: 'none', properties: {}, body: Buffer.from('three') });
    const locked = c.c2d.lockNext('dev')!;
    expect(locked.messageId).toBe('one');
    const second = c.c2d.lockNext('dev')!;
    await c.c2d.complete('dev', second.lockToken);
    c = await open();
    expect(c.c2d.depth('dev')).toBe(2);
    const again = c.c2d.lockNext('dev')!;
    expect(again).toEqual({ ...first, deliveryCount: 2, lockToken: expect.any(String) });
    expect(c.c2d.lockNext('dev')!.body.toString()).toBe('three');
  });

  test('a message locked for its last allowed delivery is dropped with feedback on restart', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'dev' });
    await c.c2d.enqueue('dev', {
      ack: 'negative',
      messageId: 'spent',
      properties: {},
      body: Buffer.from('x'),
    });
    for (let i = 0; i < 9; i++) await c.c2d.abandon('dev', c.c2d.lockNext('dev')!.lockToken);
    expect(c.c2d.lockNext('dev')!.deliveryCount).toBe(10);
    c = await open();
    expect(c.c2d.depth('dev')).toBe(0);
    ctx.clock.advance(BATCH_DELAY);
    expect(c.feedback.take()!.records).toEqual([
      expect.objectContaining({ originalMessageId: 'spent', statusCode: 'DeliveryCountExceeded' }),
    ]);
  });

  test('pending feedback survives: unsettled batches and records not batched yet', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'dev' });
    const outcome = async (messageId: string): Promise<void> => {
      await c.c2d.enqueue('dev', {
        ack: 'full',
        messageId,
        properties: {},
        body: Buffer.from('x'),
      });
      await c.c2d.complete('dev', c.c2d.lockNext('dev')!.lockToken);
    };
    await outcome('settled');
    ctx.clock.advance(BATCH_DELAY);
    await c.feedback.settle(c.feedback.take()!.batchId);
    await outcome('taken-not-settled');
    ctx.clock.advance(BATCH_DELAY);
    expect(c.feedback.take()!.records[0]!.originalMessageId).toBe('taken-not-settled');
    await outcome('open');
    c = await open();
    const batch = c.feedback.take()!;
    expect(batch.records.map((r) => r.originalMessageId)).toEqual(['taken-not-settled']);
    expect(c.feedback.take()).toBeUndefined();
    ctx.clock.advance(BATCH_DELAY);
    expect(c.feedback.take()!.records.map((r) => r.originalMessageId)).toEqual(['open']);
  });
}

/** Torn or corrupt tails of the state log and of a segment are cut off at start-up. */
function damagedTailTests(ctx: DurableContext): void {
  const { open, storeDir, segments } = ctx;

  test('a torn last state record is cut off and start-up succeeds', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'kept' });
    await c.registry.create({ deviceId: 'torn' });
    await c.close();
    const log = join(storeDir(), 'state.log');
    truncateSync(log, statSync(log).size - 3);
    const warn = jest.fn();
    c = await open({ storeTuning: { warn } });
    expect(c.registry.list().map((d) => d.deviceId)).toEqual(['kept']);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('state.log'));
    await c.registry.create({ deviceId: 'later' });
    c = await open();
    expect(c.registry.list().map((d) => d.deviceId)).toEqual(['kept', 'later']);
  });

  test('garbage after the last record (state and telemetry) is ignored', async () => {
    let c = await open();
    await c.registry.create({ deviceId: 'dev' });
    const event = await c.d2c.append(telemetry('dev', 'only'));
    await c.close();
    appendFileSync(join(storeDir(), 'state.log'), Buffer.from([9, 0, 0, 0, 1, 2, 3, 4, 5, 6]));
    const segment = join(storeDir(), segments()[0]!);
    // A plausible header whose CRC does not match, then random bytes.
    appendFileSync(
      segment,
      Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('junk')]),
    );
    const warn = jest.fn();
    c = await open({ storeTuning: { warn } });
    expect(warn).toHaveBeenCalledTimes(2);
    expect(c.registry.get('dev')).toBeDefined();
    expect(c.d2c.read(event.partitionId, 0, 10)).toEqual([event]);
    expect((await c.d2c.append(telemetry('dev', 'next'))).sequenceNumber).toBe(1);
  });

  test('a telemetry record torn mid-write loses only that record', async () => {
    let c = await open();
    const first = await c.d2c.append(telemetry('dev', 'first'));
    await c.d2c.append(telemetry('dev', 'second'));
    await c.close();
    const segment = join(storeDir(), segments()[0]!);
    truncateSync(segment, statSync(segment).size - 5);
    c = await open({ storeTuning: { warn: () => {} } });
    expect(c.d2c.read(first.partitionId, 0, 10)).toEqual([first]);
  });
}

/** Shared fsyncs, segment rollover and retention. */
function groupCommitAndRolloverTests(ctx: DurableContext): void {
  const { open, segments } = ctx;

  test('concurrent appends share fsyncs (group commit) when each append waits for its sync', async () => {
    const c = await open({ d2cSyncIntervalMs: 0 });
    const before = c.storeStats();
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => c.d2c.append(telemetry(`d${i % 20}`, `${i}`))),
    );
    const after = c.storeStats();
    expect(after.eventsWritten - before.eventsWritten).toBe(500);
    expect(after.eventFlushes - before.eventFlushes).toBeLessThanOrEqual(2);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => c.registry.create({ deviceId: `r${i}` })),
    );
    expect(c.storeStats().stateFlushes - after.stateFlushes).toBeLessThanOrEqual(2);
  });

  test('telemetry segments roll over and are deleted once past retention', async () => {
    let c = await open({ retentionMs: 10_000, storeTuning: { segmentBytes: 2048 } });
    const sent = [];
    for (let i = 0; i < 60; i++) sent.push(await c.d2c.append(telemetry('dev', `event-${i}`)));
    expect(segments().length).toBeGreaterThan(3);
    c = await open({ retentionMs: 10_000, storeTuning: { segmentBytes: 2048 } });
    expect(c.d2c.read(sent[0]!.partitionId, 0, 100)).toEqual(sent);
    ctx.clock.advance(10_001);
    expect(c.d2c.read(sent[0]!.partitionId, 0, 100)).toEqual([]);
    await c.close();
    // Only the segment that was active when the events expired remains.
    expect(segments()).toHaveLength(1);
    c = await open({ retentionMs: 10_000, storeTuning: { segmentBytes: 2048 } });
    expect((await c.d2c.append(telemetry('dev', 'fresh'))).sequenceNumber).toBe(60);
    expect(c.d2c.info(sent[0]!.partitionId).beginSequenceNumber).toBe(60);
  });

  test('rolling over under concurrent appends keeps every event, in order', async () => {
    const tuning = { storeTuning: { segmentBytes: 4096 } };
    let c = await open(tuning);
    const sent = await Promise.all(
      Array.from({ length: 300 }, (_, i) => c.d2c.append(telemetry(`d${i % 5}`, `${i}`))),
    );
    for (let round = 0; round < 5; round++) {
      sent.push(
        ...(await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            c.d2c.append(telemetry(`d${i % 5}`, `r${round}-${i}`)),
          ),
        )),
      );
    }
    expect(segments().length).toBeGreaterThan(2);
    c = await open(tuning);
    for (const p of c.d2c.partitionIds) {
      const expected = sent.filter((e) => e.partitionId === p);
      expect(c.d2c.read(p, 0, 10_000)).toEqual(expected);
    }
  });
}

/** State log compaction, and the partition count the folder was made for. */
function compactionAndLayoutTests(ctx: DurableContext): void {
  const { open, storeDir } = ctx;

  test('the state log is compacted as it grows', async () => {
    let c = await open({ storeTuning: { compactStateBytes: 4096 } });
    await c.registry.create({ deviceId: 'busy' });
    let last;
    for (let i = 0; i < 300; i++) last = await c.registry.update('busy', { statusReason: `r${i}` });
    expect(c.storeStats().stateCompactions).toBeGreaterThan(0);
    await c.close();
    expect(statSync(join(storeDir(), 'state.log')).size).toBeLessThan(4096 * 2);
    c = await open();
    expect(c.registry.get('busy')).toEqual(last);
  });

  test('changes recorded while the state log is being compacted are kept', async () => {
    const tuning = { storeTuning: { compactStateBytes: 2048 } };
    let c = await open(tuning);
    const created = [];
    for (let wave = 0; wave < 5; wave++) {
      created.push(
        ...(await Promise.all(
          Array.from({ length: 40 }, (_, i) => c.registry.create({ deviceId: `w${wave}-${i}` })),
        )),
      );
    }
    expect(c.storeStats().stateCompactions).toBeGreaterThan(0);
    c = await open(tuning);
    expect(c.registry.list()).toEqual(
      [...created].sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1)),
    );
  });

  test('a data folder made for another partition count is refused with a clear message', async () => {
    await (await open({ partitionCount: 4 })).close();
    await expect(open({ partitionCount: 8 })).rejects.toThrow(/4 partitions, not 8/);
    ctx.forget();
  });
}
