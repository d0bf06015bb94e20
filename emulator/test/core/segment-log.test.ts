/**
 * The telemetry log on disk (`segment-log.ts` behind the durable store): with a tiny cache and
 * tiny segments, readers far behind the head read segment files; lookups by offset, sequence
 * number and time cross segment boundaries; retention deletes whole segments and moves readers to
 * the new beginning; reopening loads saved indexes instead of replaying events, and a segment
 * left without an index by a crash is scanned once with its torn tail cut off.
 */
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock';
import type { StoredEvent, TelemetryInput } from '../../core/contracts';
import type { CreateCoreOptions, InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';
import { until } from '../../../test/support/wait';

const SMALL = { storeTuning: { segmentBytes: 4096 }, d2cCacheBytes: 600, partitionCount: 2 };

function telemetry(deviceId: string, text: string): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from(text),
    properties: { n: text },
    generationId: '42',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub"}',
  };
}

/** Reads a whole partition from `from` in small batches, as a reader with little credit does. */
function readAll(core: InspectableCore, partitionId: string, from: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (;;) {
    const batch = core.d2c.read(partitionId, from, 7);
    if (batch.length === 0) return out;
    out.push(...batch);
    from = batch[batch.length - 1]!.sequenceNumber + 1;
  }
}

/** What a group's tests see: the current test's clock and data folder, and the cores it opened. */
interface SegmentContext {
  /** A new FakeClock for each test. */
  readonly clock: FakeClock;
  /** A new temp data folder for each test. */
  readonly dataDir: string;
  /** Every core the test opened, closed after it. */
  readonly cores: InspectableCore[];
  storeDir(dir?: string): string;
  /** The telemetry segment files of `dir`'s store, in order. */
  segments(dir?: string): string[];
  /** Opens a core on the test's folder and clock with tiny segments and cache. */
  open(options?: CreateCoreOptions): Promise<InspectableCore>;
  /** Appends `count` events over two devices, one ms apart. */
  fill(core: InspectableCore, count?: number): Promise<StoredEvent[]>;
}

describe('telemetry segment log', () => {
  const ctx = smallStoreEachTest();
  readingTests(ctx);
  retentionAndRestartTests(ctx);
  savedIndexTests(ctx);
});

/** Each test gets a temp data folder and a FakeClock; after it, its cores close, the folder goes. */
function smallStoreEachTest(): SegmentContext {
  let dataDir: string;
  let clock: FakeClock;
  const cores: InspectableCore[] = [];
  const storeDir = (dir = dataDir): string => join(dir, 'store');
  const segments = (dir = dataDir): string[] =>
    readdirSync(storeDir(dir))
      .filter((n) => /^d2c-\d+\.log$/.test(n))
      .sort();

  async function open(options: CreateCoreOptions = {}): Promise<InspectableCore> {
    const core = await createCore({ clock, dataDir, ...SMALL, ...options });
    cores.push(core);
    return core;
  }

  /** 200 events over two devices, one ms apart, so each has its own enqueued time. */
  async function fill(core: InspectableCore, count = 200): Promise<StoredEvent[]> {
    const sent: StoredEvent[] = [];
    for (let i = 0; i < count; i++) {
      sent.push(await core.d2c.append(telemetry(`dev-${i % 2}`, `event-${i}`)));
      clock.advance(1);
    }
    return sent;
  }

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'iothub-segments-'));
    clock = new FakeClock();
  });
  afterEach(async () => {
    for (const core of cores.splice(0)) await core.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    get clock(): FakeClock {
      return clock;
    },
    get dataDir(): string {
      return dataDir;
    },
    cores,
    storeDir,
    segments,
    open,
    fill,
  };
}

/** Reading across segment files: from the start, from any position, with few files open. */
function readingTests(ctx: SegmentContext): void {
  const { open, fill, segments } = ctx;

  test('readers from the beginning read every event, in order, across segment files', async () => {
    const core = await open();
    const sent = await fill(core);
    expect(segments().length).toBeGreaterThan(4);
    for (const p of core.d2c.partitionIds) {
      const expected = sent.filter((e) => e.partitionId === p);
      expect(expected.length).toBeGreaterThan(20);
      expect(readAll(core, p, 0)).toEqual(expected);
    }
  });

  test('a consumer resuming from any offset, sequence number or time gets exactly what follows', async () => {
    const core = await open();
    const sent = await fill(core);
    for (const p of core.d2c.partitionIds) {
      const expected = sent.filter((e) => e.partitionId === p);
      for (const [i, event] of expected.entries()) {
        // Offsets are the sequence number as a string.
        expect(readAll(core, p, Number(event.offset) + 1)).toEqual(expected.slice(i + 1));
        expect(core.d2c.sequenceNumberAtTime(p, event.enqueuedTime)).toBe(event.sequenceNumber);
      }
      const last = expected[expected.length - 1]!;
      expect(core.d2c.sequenceNumberAtTime(p, last.enqueuedTime + 1)).toBe(last.sequenceNumber + 1);
    }
  });

  test('reading through many segments keeps only a few files open', async () => {
    const core = await open({ storeTuning: { segmentBytes: 1024 } });
    const sent = await fill(core, 400);
    expect(segments().length).toBeGreaterThan(30);
    for (const p of core.d2c.partitionIds) {
      expect(readAll(core, p, 0)).toHaveLength(sent.filter((e) => e.partitionId === p).length);
    }
    const openSegments = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return /\/d2c-\d+\.log$/.test(readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false; // closed between listing and reading
      }
    });
    // At most 8 read descriptors plus the active segment's writer.
    expect(openSegments.length).toBeLessThanOrEqual(9);
  });
}

/** Retention deleting whole segments, and appending after a restart. */
function retentionAndRestartTests(ctx: SegmentContext): void {
  const { open, fill, segments } = ctx;

  test('retention deletes whole segments; readers before it start at the new beginning', async () => {
    const core = await open({ retentionMs: 1000 });
    const sent = await fill(core);
    const before = segments().length;
    ctx.clock.advance(1000 - 200 + 100); // events 0..99 are now past retention
    const cutoff = ctx.clock.now() - 1000;
    core.d2c.info('0'); // retention runs as the log is used; files go asynchronously
    await until('expired segments deleted', () => (segments().length < before ? true : undefined));
    for (const p of core.d2c.partitionIds) {
      const kept = sent.filter((e) => e.partitionId === p && e.enqueuedTime >= cutoff);
      const info = core.d2c.info(p);
      expect(info.beginSequenceNumber).toBe(kept[0]!.sequenceNumber);
      expect(readAll(core, p, 0).slice(0, kept.length)).toEqual(kept);
      expect(core.d2c.sequenceNumberAtTime(p, 0)).toBe(kept[0]!.sequenceNumber);
    }
  });

  test('events appended after a restart join the ones on disk seamlessly', async () => {
    let core = await open();
    const sent = await fill(core, 100);
    await core.close();
    core = await open();
    sent.push(...(await fill(core, 100)));
    for (const p of core.d2c.partitionIds) {
      expect(readAll(core, p, 0)).toEqual(sent.filter((e) => e.partitionId === p));
    }
  });
}

/** Saved indexes loaded on reopening, and a segment a crash left without one. */
function savedIndexTests(ctx: SegmentContext): void {
  const { open, fill, segments, storeDir, cores } = ctx;

  test('reopening loads saved indexes: no event is replayed, and reading still works', async () => {
    let core = await open();
    const sent = await fill(core);
    await core.close();
    // Corrupt one event's body in a sealed segment without changing its length: a replay would
    // stop at the bad CRC and cut the file; loading the saved index leaves it alone.
    const first = join(storeDir(), segments()[0]!);
    const size = statSync(first).size;
    const bytes = readFileSync(first);
    bytes[bytes.indexOf('event-0')] = 'E'.charCodeAt(0);
    writeFileSync(first, bytes);
    const warn = jest.fn();
    core = await open({ storeTuning: { ...SMALL.storeTuning, warn } });
    expect(warn).not.toHaveBeenCalled();
    expect(statSync(first).size).toBe(size);
    const p = sent[0]!.partitionId;
    expect(core.d2c.info(p).lastEnqueuedSequenceNumber).toBe(
      sent.filter((e) => e.partitionId === p).length - 1,
    );
    expect(readAll(core, p, 1)).toEqual(sent.filter((e) => e.partitionId === p).slice(1));
  });

  test('a segment left without an index by a crash is scanned once and its torn tail cut off', async () => {
    const core = await open();
    const sent = await fill(core);
    // A copy taken while the hub runs is what a crash leaves: the active segment has no index.
    const crashed = mkdtempSync(join(tmpdir(), 'iothub-segments-crash-'));
    try {
      cpSync(ctx.dataDir, crashed, { recursive: true });
      const last = join(storeDir(crashed), segments(crashed).at(-1)!);
      expect(readdirSync(storeDir(crashed))).not.toContain(
        `index-${segments(crashed).at(-1)!.replace('.log', '.json')}`,
      );
      const intact = statSync(last).size;
      appendFileSync(last, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5])); // a frame torn mid-write
      const warn = jest.fn();
      const reopened = await createCore({
        clock: ctx.clock,
        dataDir: crashed,
        ...SMALL,
        storeTuning: { ...SMALL.storeTuning, warn },
      });
      cores.push(reopened);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('cut off 9 bytes'));
      expect(statSync(last).size).toBe(intact);
      for (const p of reopened.d2c.partitionIds) {
        expect(readAll(reopened, p, 0)).toEqual(sent.filter((e) => e.partitionId === p));
      }
      const next = await reopened.d2c.append(telemetry('dev-0', 'after'));
      expect(next.sequenceNumber).toBe(
        sent.filter((e) => e.partitionId === next.partitionId).length,
      );
    } finally {
      rmSync(crashed, { recursive: true, force: true });
    }
  });
}
