/**
 * The durable store: everything under `<dataDir>/store/`.
 * - `meta.json`: format version and partition count (a mismatch refuses to start).
 * - `state.log`: journaled registry, twin, C2D and feedback changes; compacted into a snapshot on open
 *   and whenever it grows well past the live state.
 * - `d2c-<n>.log`: telemetry segments, each starting with the next sequence number per partition;
 *   a new segment starts past a size limit and whole segments past retention are deleted.
 * Every record is length+CRC framed; a torn or corrupt tail is cut off on open.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, StoredEvent } from './contracts';
import { fsyncDirectory, LogWriter, scanLog, sealFrame, writeLogAtomically } from './framed-log';
import { decodeRecord, encodeSegmentStart, encodeStateChanges, peekEvent } from './record-codec';
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

/** What a telemetry segment holds, to decide when retention may delete it. */
interface Segment {
  index: number;
  path: string;
  /** Latest enqueued time of any event in it (0 when none). */
  newestEventTime: number;
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

async function recoverEvents(
  dir: string,
  partitionIds: readonly string[],
  cutoff: number,
  warn: Warn,
): Promise<{
  segments: Segment[];
  recovered: RecoveredState['events'];
  next: Map<string, number>;
}> {
  const names = (await readdir(dir)).filter((n) => SEGMENT_PATTERN.test(n)).sort();
  const recovered = new Map<string, Buffer[]>(partitionIds.map((id) => [id, []]));
  const next = new Map<string, number>(partitionIds.map((id) => [id, 0]));
  const segments: Segment[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const scanned = await scanLog(path);
    reportTornTail(path, scanned.validLength, scanned.fileLength, warn);
    const segment: Segment = {
      index: Number(SEGMENT_PATTERN.exec(name)![1]),
      path,
      newestEventTime: 0,
    };
    for (const payload of scanned.payloads) {
      let record;
      try {
        record = decodeRecord(payload);
      } catch {
        break;
      }
      if (record.type === 'segment-start') {
        for (const [id, n] of Object.entries(record.nextSequenceNumbers)) {
          next.set(id, Math.max(next.get(id) ?? 0, n));
        }
      } else if (record.type === 'event') {
        const { partitionId, sequenceNumber, enqueuedTime } = peekEvent(record.payload);
        const list = recovered.get(partitionId);
        if (!list) continue;
        next.set(partitionId, Math.max(next.get(partitionId) ?? 0, sequenceNumber + 1));
        segment.newestEventTime = Math.max(segment.newestEventTime, enqueuedTime);
        // Copied so retained events do not pin the whole segment buffer.
        if (enqueuedTime >= cutoff) list.push(Buffer.from(record.payload));
      }
    }
    segments.push(segment);
  }
  return { segments, recovered, next };
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

  // Telemetry: replay every segment, then append to a new one.
  const cutoff = options.clock.now() - options.retentionMs;
  const events = await recoverEvents(dir, partitionIds, cutoff, warn);
  const nextSequence = events.next;
  const closedSegments = events.segments;
  let segmentIndex = (closedSegments[closedSegments.length - 1]?.index ?? 0) + 1;
  let activeSegment: Segment = { index: segmentIndex, path: '', newestEventTime: 0 };
  let eventWriter: LogWriter | undefined;
  let eventFlushesOfClosedWriters = 0;

  const startSegment = async (): Promise<LogWriter> => {
    activeSegment = {
      index: segmentIndex,
      path: join(dir, segmentName(segmentIndex)),
      newestEventTime: 0,
    };
    segmentIndex++;
    const writer = await LogWriter.open(activeSegment.path, 0);
    await writer.append([encodeSegmentStart(Object.fromEntries(nextSequence))]);
    return writer;
  };
  eventWriter = await startSegment();

  const recovered: RecoveredState = {
    devices: state.devicesList,
    twins: state.twinsList,
    c2dMessages: state.c2dMessages,
    feedbackBatches: state.feedbackBatches,
    feedbackOpen: state.openFeedback,
    events: events.recovered,
    nextSequenceNumbers: new Map(nextSequence),
  };

  let eventsWritten = 0;
  let compactions = 0;
  let rotating: Promise<void> | undefined;
  let compacting: Promise<void> | undefined;
  let closed = false;
  const deletions = new Set<Promise<void>>();

  const rotate = (): void => {
    if (rotating || !eventWriter) return;
    const old = eventWriter;
    closedSegments.push(activeSegment);
    rotating = (async () => {
      await old.close();
      eventFlushesOfClosedWriters += old.flushes;
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
      const current = activeSegment;
      await writer.appendFrames([framed]);
      eventsWritten++;
      nextSequence.set(
        event.partitionId,
        Math.max(nextSequence.get(event.partitionId) ?? 0, event.sequenceNumber + 1),
      );
      current.newestEventTime = Math.max(current.newestEventTime, event.enqueuedTime);
      if (writer === eventWriter && writer.size > segmentBytes) rotate();
    },

    dropEventsBefore(time: number): void {
      // Whole segments only, oldest first; the active one is never deleted.
      while (closedSegments.length > 0 && closedSegments[0]!.newestEventTime < time) {
        const segment = closedSegments.shift()!;
        const deletion = rm(segment.path, { force: true })
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
      await stateWriter.close();
      await Promise.all(deletions);
    },
  };
}
