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
  /** Telemetry segments' background fdatasync interval; 0 (default) syncs every append. */
  eventSyncIntervalMs?: number;
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

/** The state log, replayed and rewritten as a fresh snapshot (this also cuts any torn tail). */
interface OpenedState {
  path: string;
  state: ReplayState;
  writer: LogWriter;
}

async function openStateLog(dir: string, warn: Warn): Promise<OpenedState> {
  const path = join(dir, STATE_LOG);
  const state = await recoverState(path, warn);
  await writeLogAtomically(path, snapshotPayloads(state));
  const writer = await LogWriter.open(path, (await scanLog(path)).validLength);
  return { path, state, writer };
}

function recoveredFrom(state: ReplayState, nextSequence: Map<string, number>): RecoveredState {
  return {
    devices: state.devicesList,
    twins: state.twinsList,
    c2dMessages: state.c2dMessages,
    feedbackBatches: state.feedbackBatches,
    feedbackOpen: state.openFeedback,
    nextSequenceNumbers: new Map(nextSequence),
  };
}

interface StoreSettings {
  dir: string;
  eventSyncIntervalMs: number;
  segmentBytes: number;
  compactStateBytes: number;
  warn: Warn;
}

/**
 * An open durable store: the state log (a mirror of the state it journals, for snapshots) and the
 * telemetry segments, appending to the newest.
 */
class DurableStore implements CoreStore {
  readonly durable = true;
  readonly recovered: RecoveredState;
  /** The next segment file's number. */
  private segmentIndex: number;
  /** The segment appended to. */
  private active: SegmentFile | undefined;
  /** Where the next frame lands in the active segment (appends are written in call order). */
  private nextOffset = 0;
  private eventWriter: LogWriter | undefined;
  private eventFlushesOfClosedWriters = 0;
  private snapshotBytes: number;
  private eventsWritten = 0;
  private compactions = 0;
  private rotating: Promise<void> | undefined;
  private compacting: Promise<void> | undefined;
  private closed = false;
  private readonly deletions = new Set<Promise<void>>();

  constructor(
    private readonly settings: StoreSettings,
    private readonly stateLog: OpenedState,
    readonly events: SegmentedEventLog,
    private readonly nextSequence: Map<string, number>,
  ) {
    this.snapshotBytes = stateLog.writer.size;
    this.segmentIndex = (events.segments[events.segments.length - 1]?.index ?? 0) + 1;
    this.recovered = recoveredFrom(stateLog.state, nextSequence);
  }

  /** Starts the next segment, headed by every partition's next sequence number, and appends there. */
  async startSegment(): Promise<void> {
    const index = this.segmentIndex++;
    const segment = new SegmentFile(index, join(this.settings.dir, segmentName(index)));
    segment.start = Object.fromEntries(this.nextSequence);
    const writer = await LogWriter.open(segment.path, 0, {
      syncIntervalMs: this.settings.eventSyncIntervalMs,
    });
    await writer.append([encodeSegmentStart(segment.start)]);
    segment.size = writer.size;
    this.nextOffset = writer.size;
    this.active = segment;
    this.events.segments.push(segment);
    this.eventWriter = writer;
  }

  async record(changes: readonly StateChange[]): Promise<void> {
    this.assertOpen();
    if (changes.length === 0) return;
    const { state, writer } = this.stateLog;
    // The mirror is updated in call order, so a snapshot taken later includes this change.
    for (const change of changes) state.apply(change);
    await writer.append([encodeStateChanges(changes)]);
    const limit = this.settings.compactStateBytes;
    if (writer.size > limit && writer.size > 4 * this.snapshotBytes) this.compact();
  }

  async appendEvent(event: StoredEvent, encoded: Buffer): Promise<void> {
    this.assertOpen();
    const framed = sealFrame(encoded);
    // Appends that arrive during a rotation wait for it together, keeping their order.
    if (this.rotating) await this.rotating;
    const writer = this.eventWriter!;
    const segment = this.active!;
    const offset = this.nextOffset;
    this.nextOffset += framed.length;
    await writer.appendFrames([framed]);
    this.eventsWritten++;
    const { partitionId, sequenceNumber, enqueuedTime } = event;
    const next = this.nextSequence;
    next.set(partitionId, Math.max(next.get(partitionId) ?? 0, sequenceNumber + 1));
    // Indexed once durable, so readers of the file never see a frame that is not.
    segment.note(partitionId, sequenceNumber, enqueuedTime, offset, framed.length);
    if (writer === this.eventWriter && writer.size > this.settings.segmentBytes) this.rotate();
  }

  dropEventsBefore(time: number): void {
    // Whole segments only, oldest first; the active one is never deleted.
    const segments = this.events.segments;
    while (
      segments.length > 1 &&
      segments[0] !== this.active &&
      segments[0]!.newestEventTime < time
    ) {
      const segment = segments.shift()!;
      this.events.remove(segment);
      this.deleteSegmentFiles(segment);
    }
  }

  stats(): StoreStats {
    return {
      eventFlushes: this.eventFlushesOfClosedWriters + (this.eventWriter?.flushes ?? 0),
      eventsWritten: this.eventsWritten,
      stateFlushes: this.stateLog.writer.flushes,
      stateCompactions: this.compactions,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.rotating) await this.rotating;
    if (this.compacting) await this.compacting;
    await this.eventWriter?.close();
    if (this.active) await this.saveIndex(this.active);
    for (const segment of this.events.segments) segment.close();
    await this.stateLog.writer.close();
    await Promise.all(this.deletions);
  }

  private deleteSegmentFiles(segment: SegmentFile): void {
    const deletion = Promise.all([
      rm(segment.path, { force: true }),
      rm(segment.indexPath(), { force: true }),
    ])
      .then(() => undefined)
      .catch((error: unknown) => console.error(`deleting ${segment.path} failed:`, error))
      .finally(() => this.deletions.delete(deletion));
    this.deletions.add(deletion);
  }

  private saveIndex(segment: SegmentFile): Promise<void> {
    return segment
      .saveIndex()
      .catch((error: unknown) =>
        this.settings.warn(`store: saving the index of ${segment.path} failed: ${String(error)}`),
      );
  }

  /** Seals the active segment (its index saved) and continues in a new one, in the background. */
  private rotate(): void {
    if (this.rotating || !this.eventWriter) return;
    const old = this.eventWriter;
    const sealed = this.active!;
    this.rotating = (async () => {
      await old.close();
      this.eventFlushesOfClosedWriters += old.flushes;
      await this.saveIndex(sealed);
      await this.startSegment();
    })().finally(() => {
      this.rotating = undefined;
    });
  }

  /** Rewrites the state log as a snapshot of the mirror, in the background. */
  private compact(): void {
    if (this.compacting) return;
    const { path, state, writer } = this.stateLog;
    this.compacting = writer
      .rewrite(path, () => snapshotPayloads(state))
      .then(() => {
        this.snapshotBytes = writer.size;
        this.compactions++;
      })
      .catch((error: unknown) => console.error(`compacting ${path} failed:`, error))
      .finally(() => {
        this.compacting = undefined;
      });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The store is closed');
  }
}

/**
 * Opens the store in `<dataDir>/store/`: checks the format, recovers the state log and the
 * telemetry segments' indexes, then starts a new segment to append to.
 */
export async function openDurableStore(options: DurableStoreOptions): Promise<CoreStore> {
  const dir = join(options.dataDir, 'store');
  await mkdir(dir, { recursive: true });
  await checkMeta(dir, options.partitionCount);
  const warn = options.warn ?? ((message: string) => console.warn(message));
  const partitionIds = Array.from({ length: options.partitionCount }, (_, i) => String(i));
  const stateLog = await openStateLog(dir, warn);
  const events = await recoverEvents(dir, partitionIds, warn);
  const settings: StoreSettings = {
    dir,
    eventSyncIntervalMs: options.eventSyncIntervalMs ?? 0,
    segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
    compactStateBytes: options.compactStateBytes ?? 4 * 1024 * 1024,
    warn,
  };
  const store = new DurableStore(settings, stateLog, events.log, events.next);
  await store.startSegment();
  return store;
}
