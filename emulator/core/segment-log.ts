/**
 * The on-disk side of the telemetry log: segment files of framed records (`d2c-<n>.log`, all
 * partitions interleaved so one group commit covers them all) plus, per segment and partition, a
 * sparse index (every `SPARSE_EVERY`th event: sequence number, enqueued time, file offset) and
 * the first/last sequence number and time. Readers positioned anywhere within retention read the
 * segment file; nothing but the index stays in memory. A sealed segment's index is saved next to
 * it (`index-d2c-<n>.json`), so a restart reads indexes instead of replaying events; a segment
 * without one (the one active at a crash) is scanned once, its torn tail cut off.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanLog } from './framed-log';
import { decodeRecord, peekEvent } from './record-codec';

/** One sparse index entry per this many events of a partition within a segment. */
const SPARSE_EVERY = 32;
/** Bytes read from a segment file at a time: the first read of a scan, and at most. */
const FIRST_CHUNK = 16 * 1024;
const READ_CHUNK = 256 * 1024;
const FRAME_HEADER = 8;
const INDEX_VERSION = 1;
/** Read descriptors kept open across reads (least recently used closed first). */
const MAX_OPEN_FILES = 8;

/** One partition's events within one segment. */
export interface PartitionRange {
  firstSeq: number;
  lastSeq: number;
  firstTime: number;
  lastTime: number;
  count: number;
  /** Triples: sequence number, enqueued time, offset of the frame. */
  sparse: number[];
}

/** What a segment's index file holds. */
interface SavedIndex {
  version: number;
  size: number;
  start: Record<string, number>;
  ranges: Record<string, PartitionRange>;
}

export function segmentIndexName(segmentName: string): string {
  return `index-${segmentName.replace(/\.log$/, '.json')}`;
}

export class SegmentFile {
  /** Bytes of intact, durable frames (readers never look past it). */
  size = 0;
  readonly ranges = new Map<string, PartitionRange>();
  /** The next sequence number per partition when the segment started. */
  start: Record<string, number> = {};
  private fd: number | undefined;

  constructor(
    readonly index: number,
    readonly path: string,
  ) {}

  get newestEventTime(): number {
    let newest = 0;
    for (const range of this.ranges.values()) newest = Math.max(newest, range.lastTime);
    return newest;
  }

  /** Indexes one durable event whose frame starts at `offset` and is `length` bytes. */
  note(partitionId: string, seq: number, time: number, offset: number, length: number): void {
    let range = this.ranges.get(partitionId);
    if (!range) {
      range = {
        firstSeq: seq,
        lastSeq: seq,
        firstTime: time,
        lastTime: time,
        count: 0,
        sparse: [],
      };
      this.ranges.set(partitionId, range);
    }
    if (range.count % SPARSE_EVERY === 0) range.sparse.push(seq, time, offset);
    range.count++;
    range.lastSeq = Math.max(range.lastSeq, seq);
    range.lastTime = Math.max(range.lastTime, time);
    this.size = Math.max(this.size, offset + length);
  }

  /**
   * Appends to `out` the encoded events of the partition with sequence number ≥ `fromSeq` (and
   * enqueued time ≥ `minTime`), until `out` holds `max`; false when the segment ran out first.
   */
  read(partitionId: string, fromSeq: number, minTime: number, max: number, out: Buffer[]): boolean {
    const range = this.ranges.get(partitionId);
    if (!range || range.lastSeq < fromSeq || range.lastTime < minTime) return false;
    // A safe start precedes the first match: at or before `fromSeq`, or older than `minTime`.
    const offset = this.startOffset(range, (s, t) => s <= fromSeq || t < minTime);
    let done = false;
    this.scanFrom(offset, (payload) => {
      const peek = peekEvent(payload);
      if (peek.partitionId !== partitionId) return true;
      if (peek.sequenceNumber >= fromSeq && peek.enqueuedTime >= minTime) {
        out.push(Buffer.from(payload)); // a copy: the chunk it came from is reused
      }
      if (out.length >= max) done = true;
      return !done && peek.sequenceNumber < range.lastSeq;
    });
    return done;
  }

  /** The first event of the partition at or after `time` in this segment, if any. */
  atTime(partitionId: string, time: number): { seq: number; time: number } | undefined {
    const range = this.ranges.get(partitionId);
    if (!range || range.lastTime < time) return undefined;
    if (range.firstTime >= time) return { seq: range.firstSeq, time: range.firstTime };
    let found: { seq: number; time: number } | undefined;
    this.scanFrom(
      this.startOffset(range, (_, t) => t < time),
      (payload) => {
        const peek = peekEvent(payload);
        if (peek.partitionId === partitionId && peek.enqueuedTime >= time) {
          found = { seq: peek.sequenceNumber, time: peek.enqueuedTime };
        }
        return found === undefined;
      },
    );
    return found;
  }

  /** Offset of the last sparse entry satisfying `before` (entries are in order), else the first. */
  private startOffset(
    range: PartitionRange,
    before: (seq: number, time: number) => boolean,
  ): number {
    const entries = range.sparse.length / 3;
    let lo = 0;
    let hi = entries - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (before(range.sparse[mid * 3]!, range.sparse[mid * 3 + 1]!)) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return range.sparse[best * 3 + 2] ?? 0;
  }

  /** Calls `visit` with each event payload from `offset` on while it returns true. */
  private scanFrom(offset: number, visit: (payload: Buffer) => boolean): void {
    this.fd ??= openSync(this.path, 'r');
    // Small first (a lookup usually ends within a few KiB of its sparse entry), then larger.
    let chunk = Buffer.allocUnsafe(FIRST_CHUNK);
    let position = offset;
    while (position < this.size) {
      const wanted = Math.min(chunk.length, this.size - position);
      const got = readSync(this.fd, chunk, 0, wanted, position);
      let at = 0;
      while (at + FRAME_HEADER <= got) {
        const length = chunk.readUInt32LE(at);
        if (at + FRAME_HEADER + length > got) break;
        const payload = chunk.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
        at += FRAME_HEADER + length;
        if (payload[0] === EVENT_TYPE && !visit(payload)) return;
      }
      if (at === 0) {
        // One frame larger than the chunk: grow the chunk to hold it.
        const length = got >= 4 ? chunk.readUInt32LE(0) : 0;
        if (length === 0 || position + FRAME_HEADER + length > this.size) return;
        chunk = Buffer.allocUnsafe(FRAME_HEADER + length);
        continue;
      }
      position += at;
      if (chunk.length < READ_CHUNK)
        chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, chunk.length * 4));
    }
  }

  /** Saves the index next to the segment (not fsynced: a lost index only means a rescan). */
  async saveIndex(): Promise<void> {
    const saved: SavedIndex = {
      version: INDEX_VERSION,
      size: this.size,
      start: this.start,
      ranges: Object.fromEntries(this.ranges),
    };
    const path = this.indexPath();
    await writeFile(`${path}.tmp`, JSON.stringify(saved));
    await rename(`${path}.tmp`, path);
  }

  indexPath(): string {
    const slash = this.path.lastIndexOf('/');
    return join(this.path.slice(0, slash), segmentIndexName(this.path.slice(slash + 1)));
  }

  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The type byte of an event record (`record-codec`). */
const EVENT_TYPE = 1;

/** Loads a segment's saved index if it matches the file, else scans the file and saves one. */
export async function openSegment(
  index: number,
  path: string,
  warn: (message: string) => void,
): Promise<SegmentFile> {
  const segment = new SegmentFile(index, path);
  const fileSize = (await stat(path)).size;
  if (await loadIndex(segment, fileSize)) return segment;
  const scanned = await scanLog(path);
  let offset = 0;
  for (const payload of scanned.payloads) {
    const at = offset;
    offset += FRAME_HEADER + payload.length;
    let record;
    try {
      record = decodeRecord(payload);
    } catch {
      scanned.validLength = at; // an intact frame we cannot read: stop there, as for a torn one
      break;
    }
    if (record.type === 'segment-start') segment.start = record.nextSequenceNumbers;
    if (record.type !== 'event') continue;
    const peek = peekEvent(payload);
    segment.note(
      peek.partitionId,
      peek.sequenceNumber,
      peek.enqueuedTime,
      at,
      FRAME_HEADER + payload.length,
    );
  }
  segment.size = scanned.validLength;
  if (fileSize > scanned.validLength) {
    warn(
      `store: cut off ${fileSize - scanned.validLength} bytes after the last intact record of ${path} (an interrupted write)`,
    );
    await truncate(path, scanned.validLength);
  }
  await segment.saveIndex();
  return segment;
}

async function loadIndex(segment: SegmentFile, fileSize: number): Promise<boolean> {
  let saved: SavedIndex;
  try {
    saved = JSON.parse(await readFile(segment.indexPath(), 'utf8')) as SavedIndex;
  } catch {
    return false;
  }
  if (saved.version !== INDEX_VERSION || saved.size !== fileSize) return false;
  segment.size = saved.size;
  segment.start = saved.start;
  for (const [id, range] of Object.entries(saved.ranges)) segment.ranges.set(id, range);
  return true;
}

/** Every segment's index, oldest first: the read side of the telemetry log. */
export class SegmentedEventLog {
  readonly segments: SegmentFile[] = [];
  /** Segments with an open descriptor, least recently read first. */
  private readonly opened = new Set<SegmentFile>();

  /** Keeps at most `MAX_OPEN_FILES` read descriptors, however many segments retention holds. */
  private used(segment: SegmentFile): void {
    this.opened.delete(segment);
    if (!segment.isOpen) return;
    this.opened.add(segment);
    for (const oldest of this.opened) {
      if (this.opened.size <= MAX_OPEN_FILES) break;
      oldest.close();
      this.opened.delete(oldest);
    }
  }

  /** Forgets a segment retention deleted. */
  remove(segment: SegmentFile): void {
    segment.close();
    this.opened.delete(segment);
  }

  /** Encoded events of a partition from `fromSeq` on with enqueued time ≥ `minTime`. */
  read(partitionId: string, fromSeq: number, minTime: number, max: number): Buffer[] {
    const out: Buffer[] = [];
    if (max <= 0) return out;
    for (const segment of this.segments) {
      const done = segment.read(partitionId, fromSeq, minTime, max, out);
      this.used(segment);
      if (done) break;
    }
    return out;
  }

  /** The partition's first event enqueued at or after `time`, if any is on disk. */
  firstAtTime(
    partitionId: string,
    time: number,
  ): { sequenceNumber: number; enqueuedTime: number } | undefined {
    for (const segment of this.segments) {
      const found = segment.atTime(partitionId, time);
      this.used(segment);
      if (found) return { sequenceNumber: found.seq, enqueuedTime: found.time };
    }
    return undefined;
  }

  /** The partition's newest event on disk, if any. */
  last(partitionId: string): { sequenceNumber: number; enqueuedTime: number } | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const range = this.segments[i]!.ranges.get(partitionId);
      if (range) return { sequenceNumber: range.lastSeq, enqueuedTime: range.lastTime };
    }
    return undefined;
  }
}
