/**
 * The durable store: everything under `<dataDir>/store/`.
 * - `meta.json`: format version and partition count (a mismatch refuses to start).
 * - `state.log`: journaled registry, twin, C2D and feedback changes; compacted into a snapshot on open
 *   and whenever it grows well past the live state.
 * - `d2c-<n>.log`: telemetry segments, each starting with the next sequence number per partition;
 *   a new segment starts past a size limit and whole segments past retention are deleted.
 *   `index-d2c-<n>.json`: a sealed segment's sparse index (`segment-log.ts`), so reopening reads
 *   no events; telemetry is read back from the segment files, not kept in memory here.
 * Every record is length+CRC framed; a torn or corrupt tail is cut off on open.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, StoredEvent } from './contracts';
import { fsyncDirectory, LogWriter, scanLog, sealFrame, writeLogAtomically } from './framed-log';
import { decodeRecord, encodeSegmentStart, encodeStateChanges } from './record-codec';
import { openSegment, SegmentedEventLog, SegmentFile } from './segment-log';
import { ReplayState } from './replay-state';
import type { CoreStore, RecoveredState, StateChange, StoreStats } from './store';

const FORMAT_VERSION = 1;
const STATE_LOG = 'state.log';
const SEGMENT_PATTERN = /^d2c-(\d{10})\.log$/;
const CHANGES_PER_SNAPSHOT_FRAME = 256;

export interface DurableStoreOptions {
  dataDir: string;
  partitionCount: number;
  clock: Clock;
  retentionMs: number;
  /** Start a new telemetry segment past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Compact the state log once it exceeds this size and 4× the last snapshot (default 4 MiB). */
  compactStateBytes?: number;
  /** Where recovery reports what it cut off (default console.warn). */
  warn?: (message: string) => void;
}

function segmentName(index: number): string {
  return `d2c-${String(index).padStart(10, '0')}.log`;
}

async function checkMeta(dir: string, partitionCount: number): Promise<void> {
  const path = join(dir, 'meta.json');
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text === undefined) {
    // Atomically (temp file, fsync, rename): a crash here must not leave a half-written file.
    const temp = `${path}.tmp`;
    await writeFile(temp, `${JSON.stringify({ version: FORMAT_VERSION, partitionCount })}\n`, {
      flush: true,
    });
    await rename(temp, path);
    fsyncDirectory(dir);
    return;
  }
  const meta = JSON.parse(text) as { version?: unknown; partitionCount?: unknown };
  if (meta.version !== FORMAT_VERSION) {
    throw new Error(`${path}: unsupported store format ${String(meta.version)}`);
  }
  if (meta.partitionCount !== partitionCount) {
    throw new Error(
      `${path}: the data folder holds ${String(meta.partitionCount)} partitions, not ${partitionCount}; use another data folder or the same partition count`,
    );
  }
}

function snapshotPayloads(state: ReplayState): Buffer[] {
  const changes = state.snapshot();
  const payloads: Buffer[] = [];
  for (let i = 0; i < changes.length; i += CHANGES_PER_SNAPSHOT_FRAME) {
    payloads.push(encodeStateChanges(changes.slice(i, i + CHANGES_PER_SNAPSHOT_FRAME)));
  }
  return payloads;
}

type Warn = (message: string) => void;

function reportTornTail(path: string, validLength: number, fileLength: number, warn: Warn): void {
  if (fileLength > validLength) {
    warn(
      `store: ignored ${fileLength - validLength} bytes after the last intact record of ${path} (an interrupted write)`,
    );
  }
}

async function recoverState(path: string, warn: Warn): Promise<ReplayState> {
  const state = new ReplayState();
  const scanned = await scanLog(path);
  reportTornTail(path, scanned.validLength, scanned.fileLength, warn);
  for (const payload of scanned.payloads) {
    let changes: StateChange[];
    try {
      const record = decodeRecord(payload);
      if (record.type !== 'state') continue;
      changes = record.changes;
    } catch {
      break; // an intact frame we cannot read: stop there, as for a torn one
    }
    for (const change of changes) state.apply(change);
  }
  return state;
}

/** Opens every segment by its index (scanning only those without one); no event is decoded. */
async function recoverEvents(
  dir: string,
  partitionIds: readonly string[],
  warn: Warn,
): Promise<{ log: SegmentedEventLog; next: Map<string, number> }> {
  const names = (await readdir(dir)).filter((n) => SEGMENT_PATTERN.test(n)).sort();
  const log = new SegmentedEventLog();
  const next = new Map<string, number>(partitionIds.map((id) => [id, 0]));
  for (const name of names) {
    const index = Number(SEGMENT_PATTERN.exec(name)![1]);
    const segment = await openSegment(index, join(dir, name), warn);
    for (const [id, n] of Object.entries(segment.start)) {
      next.set(id, Math.max(next.get(id) ?? 0, n));
    }
    for (const [id, range] of segment.ranges) {
      if (next.has(id)) next.set(id, Math.max(next.get(id)!, range.lastSeq + 1));
    }
    log.segments.push(segment);
  }
  return { log, next };
}

export async function openDurableStore(options: DurableStoreOptions): Promise<CoreStore> {
  const dir = join(options.dataDir, 'store');
  await mkdir(dir, { recursive: true });
  await checkMeta(dir, options.partitionCount);
  const segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
  const compactStateBytes = options.compactStateBytes ?? 4 * 1024 * 1024;
  const partitionIds = Array.from({ length: options.partitionCount }, (_, i) => String(i));

  // State: replay, then start from a fresh snapshot (this also cuts off any torn tail).
  const statePath = join(dir, STATE_LOG);
  const warn = options.warn ?? ((message: string) => console.warn(message));
  const state = await recoverState(statePath, warn);
  await writeLogAtomically(statePath, snapshotPayloads(state));
  const stateWriter = await LogWriter.open(statePath, (await scanLog(statePath)).validLength);
  let snapshotBytes = stateWriter.size;

  // Telemetry: read the segments' indexes (no event replayed), then append to a new segment.
  const events = await recoverEvents(dir, partitionIds, warn);
  const log = events.log;
  const nextSequence = events.next;
  let segmentIndex = (log.segments[log.segments.length - 1]?.index ?? 0) + 1;
  let active: SegmentFile | undefined;
  /** Where the next frame lands in the active segment (appends are written in call order). */
  let nextOffset = 0;
  let eventWriter: LogWriter | undefined;
  let eventFlushesOfClosedWriters = 0;

  const startSegment = async (): Promise<LogWriter> => {
    const segment = new SegmentFile(segmentIndex, join(dir, segmentName(segmentIndex)));
    segmentIndex++;
    segment.start = Object.fromEntries(nextSequence);
    const writer = await LogWriter.open(segment.path, 0);
    await writer.append([encodeSegmentStart(segment.start)]);
    segment.size = writer.size;
    nextOffset = writer.size;
    active = segment;
    log.segments.push(segment);
    return writer;
  };
  eventWriter = await startSegment();

  const recovered: RecoveredState = {
    devices: state.devicesList,
    twins: state.twinsList,
    c2dMessages: state.c2dMessages,
    feedbackBatches: state.feedbackBatches,
    feedbackOpen: state.openFeedback,
    nextSequenceNumbers: new Map(nextSequence),
  };

  let eventsWritten = 0;
  let compactions = 0;
  let rotating: Promise<void> | undefined;
  let compacting: Promise<void> | undefined;
  let closed = false;
  const deletions = new Set<Promise<void>>();

  const saveIndex = (segment: SegmentFile): Promise<void> =>
    segment
      .saveIndex()
      .catch((error: unknown) =>
        warn(`store: saving the index of ${segment.path} failed: ${String(error)}`),
      );

  const rotate = (): void => {
    if (rotating || !eventWriter) return;
    const old = eventWriter;
    const sealed = active!;
    rotating = (async () => {
      await old.close();
      eventFlushesOfClosedWriters += old.flushes;
      await saveIndex(sealed);
      eventWriter = await startSegment();
    })().finally(() => {
      rotating = undefined;
    });
  };

  const compact = (): void => {
    if (compacting) return;
    compacting = stateWriter
      .rewrite(statePath, () => snapshotPayloads(state))
      .then(() => {
        snapshotBytes = stateWriter.size;
        compactions++;
      })
      .catch((error: unknown) => console.error(`compacting ${statePath} failed:`, error))
      .finally(() => {
        compacting = undefined;
      });
  };

  const assertOpen = (): void => {
    if (closed) throw new Error('The store is closed');
  };

  return {
    durable: true,
    recovered,
    events: log,

    async record(changes: readonly StateChange[]): Promise<void> {
      assertOpen();
      if (changes.length === 0) return;
      // The mirror is updated in call order, so a snapshot taken later includes this change.
      for (const change of changes) state.apply(change);
      await stateWriter.append([encodeStateChanges(changes)]);
      if (stateWriter.size > compactStateBytes && stateWriter.size > 4 * snapshotBytes) compact();
    },

    async appendEvent(event: StoredEvent, encoded: Buffer): Promise<void> {
      assertOpen();
      const framed = sealFrame(encoded);
      // Appends that arrive during a rotation wait for it together, keeping their order.
      if (rotating) await rotating;
      const writer = eventWriter!;
      const segment = active!;
      const offset = nextOffset;
      nextOffset += framed.length;
      await writer.appendFrames([framed]);
      eventsWritten++;
      nextSequence.set(
        event.partitionId,
        Math.max(nextSequence.get(event.partitionId) ?? 0, event.sequenceNumber + 1),
      );
      // Indexed once durable, so readers of the file never see a frame that is not.
      const { partitionId, sequenceNumber, enqueuedTime } = event;
      segment.note(partitionId, sequenceNumber, enqueuedTime, offset, framed.length);
      if (writer === eventWriter && writer.size > segmentBytes) rotate();
    },

    dropEventsBefore(time: number): void {
      // Whole segments only, oldest first; the active one is never deleted.
      const segments = log.segments;
      while (segments.length > 1 && segments[0] !== active && segments[0]!.newestEventTime < time) {
        const segment = segments.shift()!;
        log.remove(segment);
        const deletion = Promise.all([
          rm(segment.path, { force: true }),
          rm(segment.indexPath(), { force: true }),
        ])
          .then(() => undefined)
          .catch((error: unknown) => console.error(`deleting ${segment.path} failed:`, error))
          .finally(() => deletions.delete(deletion));
        deletions.add(deletion);
      }
    },

    stats(): StoreStats {
      return {
        eventFlushes: eventFlushesOfClosedWriters + (eventWriter?.flushes ?? 0),
        eventsWritten,
        stateFlushes: stateWriter.flushes,
        stateCompactions: compactions,
      };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (rotating) await rotating;
      if (compacting) await compacting;
      await eventWriter?.close();
      if (active) await saveIndex(active);
      for (const segment of log.segments) segment.close();
      await stateWriter.close();
      await Promise.all(deletions);
    },
  };
}
