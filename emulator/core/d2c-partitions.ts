/**
 * The Event Hub-compatible log of device-to-cloud telemetry: a fixed set of partitions, each an
 * ordered sequence of events numbered from 0. Events are visible to readers only once durable,
 * and are dropped after the retention period. Durable, only the newest events stay in memory;
 * readers further back read the store's segment files.
 */
import type { Clock, DeviceToCloud, PartitionInfo, StoredEvent, TelemetryInput } from './contracts';
import { HubError } from './contracts';
import { FRAME_HEADROOM } from './framed-log';
import { Listeners } from './listeners';
import { decodeEvent, encodeEvent } from './record-codec';
import type { CoreStore, EventLog } from './store';

/** FNV-1a over the UTF-8 bytes: stable across processes and versions, unlike anything seeded. */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

interface PendingAppend {
  event: StoredEvent;
  /** The encoded event, kept once visible. */
  payload: Buffer;
  resolve(event: StoredEvent): void;
  reject(error: unknown): void;
  done: boolean;
  error?: unknown;
}

/**
 * One partition. The newest events are cached encoded (one Buffer each, off the JS heap) with
 * parallel arrays of sequence numbers and enqueued times, decoded only when read. With an
 * `EventLog` (the durable store) the cache is bounded and older events are read from disk; without
 * one (in memory) the cache is everything retained.
 */
class Partition {
  private payloads: Buffer[] = [];
  private sequenceNumbers: number[] = [];
  private times: number[] = [];
  /** Index of the oldest cached event. */
  private head = 0;
  private cachedBytes = 0;
  /** The oldest retained event (on disk or cached), or `lastSequenceNumber + 1` when none. */
  private begin: number;
  /** Its enqueued time (Infinity when none). */
  private beginTime: number;
  /** Events enqueued before this time are past retention. */
  private cutoff = -Infinity;
  /** The cutoff when `begin` was last looked up on disk. */
  private lastDiskLookup = -Infinity;
  /** The next sequence number to assign (assigned before the write is durable). */
  nextSequenceNumber: number;
  /** The last durable event ever appended, even if retention dropped it since. */
  private lastSequenceNumber = -1;
  lastEnqueuedTime = 0;
  /** Enqueued time given to the latest append, durable or not. */
  lastAssignedTime = 0;
  /**
   * Appends not visible yet, in sequence order (numbers are assigned in call order), the one that
   * becomes visible next at `pendingHead`: a queue, not a Map keyed by sequence number, whose
   * table was reallocated as it grew and shrank with every burst.
   */
  private pending: (PendingAppend | undefined)[] = [];
  private pendingHead = 0;

  constructor(
    readonly id: string,
    nextSequenceNumber: number,
    private readonly log: EventLog | undefined,
    private readonly cacheLimit: number,
  ) {
    const last = log?.last(id);
    if (last) {
      this.lastSequenceNumber = last.sequenceNumber;
      this.lastEnqueuedTime = last.enqueuedTime;
    }
    this.nextSequenceNumber = Math.max(nextSequenceNumber, this.lastSequenceNumber + 1);
    // Events retention already dropped still count as appended.
    this.lastSequenceNumber = this.nextSequenceNumber - 1;
    this.lastAssignedTime = this.lastEnqueuedTime;
    const first = log?.firstAtTime(id, -Infinity);
    this.begin = first?.sequenceNumber ?? this.nextSequenceNumber;
    this.beginTime = first?.enqueuedTime ?? Infinity;
  }

  addPending(append: PendingAppend): void {
    this.pending.push(append);
  }

  /** The append that becomes visible next, once it is written (or has failed). */
  takeIfDone(): PendingAppend | undefined {
    const next = this.pending[this.pendingHead];
    if (!next?.done) return undefined;
    this.pending[this.pendingHead] = undefined;
    this.pendingHead++;
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    } else if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    return next;
  }

  private get cacheFirst(): number {
    return this.head < this.sequenceNumbers.length ? this.sequenceNumbers[this.head]! : Infinity;
  }

  commit(sequenceNumber: number, enqueuedTime: number, payload: Buffer): void {
    if (this.begin > this.lastSequenceNumber) {
      this.begin = sequenceNumber;
      this.beginTime = enqueuedTime;
    }
    // Commits arrive in sequence order (appends become visible strictly in order).
    this.payloads.push(payload);
    this.sequenceNumbers.push(sequenceNumber);
    this.times.push(enqueuedTime);
    this.cachedBytes += payload.length;
    this.lastSequenceNumber = Math.max(this.lastSequenceNumber, sequenceNumber);
    this.lastEnqueuedTime = Math.max(this.lastEnqueuedTime, enqueuedTime);
    // Evicted events are durable: readers find them on disk.
    while (this.log && this.cachedBytes > this.cacheLimit && this.head < this.payloads.length - 1) {
      this.evictHead();
    }
    this.compactCache();
  }

  private evictHead(): void {
    this.cachedBytes -= this.payloads[this.head]!.length;
    this.payloads[this.head] = EMPTY; // release the buffer now; the slot goes at compaction
    this.head++;
  }

  /** Drops the cache's empty slots occasionally rather than shifting on every eviction. */
  private compactCache(): void {
    if (this.head > 1024 && this.head * 2 > this.payloads.length) {
      this.payloads = this.payloads.slice(this.head);
      this.sequenceNumbers = this.sequenceNumbers.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  dropBefore(time: number): void {
    if (time <= this.cutoff) return;
    this.cutoff = time;
    const beganInCache = !this.log || this.begin >= this.cacheFirst;
    while (this.head < this.times.length && this.times[this.head]! < time) this.evictHead();
    this.compactCache();
    if (this.beginTime >= time) return;
    // While events expire continuously, look the beginning up on disk at most every 100 ms of
    // clock time: reads from disk filter by `cutoff` anyway, so only `info()` may lag that much.
    if (!beganInCache && time - this.lastDiskLookup < BEGIN_LOOKUP_INTERVAL_MS) return;
    if (!beganInCache) this.lastDiskLookup = time;
    // The oldest retained event moved: on disk (before the cache) or the cache's first.
    const onDisk = beganInCache ? undefined : this.log.firstAtTime(this.id, time);
    if (onDisk && onDisk.sequenceNumber < this.cacheFirst) {
      this.begin = onDisk.sequenceNumber;
      this.beginTime = onDisk.enqueuedTime;
    } else if (this.head < this.times.length) {
      this.begin = this.sequenceNumbers[this.head]!;
      this.beginTime = this.times[this.head]!;
    } else {
      this.begin = this.lastSequenceNumber + 1;
      this.beginTime = Infinity;
    }
  }

  /** First cached index whose value in `sorted` is ≥ `value`. */
  private lowerBound(sorted: readonly number[], value: number): number {
    let lo = this.head;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  read(fromSequenceNumber: number, max: number): StoredEvent[] {
    const events: StoredEvent[] = [];
    let from = Math.max(fromSequenceNumber, this.begin);
    if (max <= 0 || from > this.lastSequenceNumber) return events;
    const cacheFirst = this.cacheFirst;
    if (this.log && from < cacheFirst) {
      for (const payload of this.log.read(this.id, from, this.cutoff, max)) {
        const event = decodeEvent(payload);
        // Only what is visible, and the cache serves its own part.
        if (event.sequenceNumber >= cacheFirst || event.sequenceNumber > this.lastSequenceNumber) {
          break;
        }
        events.push(event);
        from = event.sequenceNumber + 1;
      }
    }
    const start = this.lowerBound(this.sequenceNumbers, from);
    const end = Math.min(this.payloads.length, start + max - events.length);
    for (let i = start; i < end; i++) {
      events.push(decodeEvent(this.payloads[i]!));
    }
    return events;
  }

  sequenceNumberAtTime(time: number): number {
    const at = Math.max(time, this.cutoff);
    if (this.log && !(this.head < this.times.length && this.times[this.head]! < at)) {
      // The answer may lie before the cache.
      const onDisk = this.log.firstAtTime(this.id, at);
      if (onDisk && onDisk.sequenceNumber < this.cacheFirst) {
        return Math.max(onDisk.sequenceNumber, this.begin);
      }
    }
    const index = this.lowerBound(this.times, at);
    return index < this.times.length ? this.sequenceNumbers[index]! : this.lastSequenceNumber + 1;
  }

  info(): PartitionInfo {
    const next = this.lastSequenceNumber + 1;
    const empty = this.begin >= next;
    return {
      partitionId: this.id,
      // Event Hubs reports -1 for a partition that never held an event.
      beginSequenceNumber: !empty ? this.begin : next === 0 ? -1 : next,
      lastEnqueuedSequenceNumber: this.lastSequenceNumber,
      lastEnqueuedOffset: String(this.lastSequenceNumber),
      lastEnqueuedTime: this.lastEnqueuedTime,
      isEmpty: empty,
    };
  }
}

const EMPTY = Buffer.alloc(0);
/**
 * 1 MiB holds a few thousand events per partition, seconds of traffic for a consumer at the head;
 * 4 MiB cost ~45 MB more peak RSS under saturation with no gain in latency or throughput
 * (docs/benchmarks.md, "Round 4").
 */
const DEFAULT_CACHE_BYTES = 1024 * 1024;
const BEGIN_LOOKUP_INTERVAL_MS = 100;

export interface D2COptions {
  clock: Clock;
  store: CoreStore;
  partitionCount: number;
  retentionMs: number;
  /** Bytes of the newest encoded events cached per partition when the store can read back (default 1 MiB). */
  cacheBytesPerPartition?: number;
}

export class D2CPartitions implements DeviceToCloud {
  readonly partitionIds: readonly string[];
  private readonly partitions = new Map<string, Partition>();
  private readonly appended = new Listeners<[StoredEvent]>();
  private readonly partitionCache = new Map<string, string>();
  private appendsSinceRetention = 0;

  constructor(
    private readonly options: D2COptions,
    nextSequenceNumbers: Map<string, number>,
  ) {
    if (!Number.isInteger(options.partitionCount) || options.partitionCount < 1) {
      throw new RangeError('partitionCount must be a positive integer');
    }
    this.partitionIds = Array.from({ length: options.partitionCount }, (_, i) => String(i));
    for (const id of this.partitionIds) {
      const next = nextSequenceNumbers.get(id) ?? 0;
      const cacheBytes = options.cacheBytesPerPartition ?? DEFAULT_CACHE_BYTES;
      this.partitions.set(id, new Partition(id, next, options.store.events, cacheBytes));
    }
    this.applyRetention();
  }

  partitionOf(deviceId: string): string {
    let id = this.partitionCache.get(deviceId);
    if (id === undefined) {
      id = String(stableHash(deviceId) % this.partitionIds.length);
      if (this.partitionCache.size > 100_000) this.partitionCache.clear();
      this.partitionCache.set(deviceId, id);
    }
    return id;
  }

  append(input: TelemetryInput): Promise<StoredEvent> {
    const partitionId = this.partitionOf(input.deviceId);
    const partition = this.partition(partitionId);
    const sequenceNumber = partition.nextSequenceNumber++;
    // Enqueued times never go backwards within a partition, so time lookups can bisect.
    const enqueuedTime = Math.max(this.options.clock.now(), partition.lastAssignedTime);
    partition.lastAssignedTime = enqueuedTime;
    // Spelled out rather than spread: a spread-then-extended literal is several times slower here.
    const event: StoredEvent = {
      deviceId: input.deviceId,
      body: input.body,
      properties: input.properties,
      messageId: input.messageId,
      correlationId: input.correlationId,
      userId: input.userId,
      to: input.to,
      contentType: input.contentType,
      contentEncoding: input.contentEncoding,
      expiryTime: input.expiryTime,
      generationId: input.generationId,
      authMethod: input.authMethod,
      partitionId,
      sequenceNumber,
      offset: String(sequenceNumber),
      enqueuedTime,
    };
    if (++this.appendsSinceRetention >= 1024) this.applyRetention();
    const encoded = encodeEvent(event, FRAME_HEADROOM);
    return new Promise<StoredEvent>((resolve, reject) => {
      const pending: PendingAppend = {
        event,
        payload: encoded.subarray(FRAME_HEADROOM),
        resolve,
        reject,
        done: false,
      };
      partition.addPending(pending);
      const settle = (error?: unknown): void => {
        pending.done = true;
        pending.error = error;
        this.commitInOrder(partition);
      };
      try {
        this.options.store.appendEvent(event, encoded).then(() => settle(), settle);
      } catch (error) {
        settle(error ?? new Error('append failed'));
      }
    });
  }

  /**
   * Makes durable appends visible strictly in sequence order, whatever order the store finished
   * them in: readers and `onAppend` listeners never see a gap that fills in later.
   */
  private commitInOrder(partition: Partition): void {
    for (;;) {
      const next = partition.takeIfDone();
      if (!next) return;
      if (next.error !== undefined) {
        next.reject(next.error);
        continue;
      }
      partition.commit(next.event.sequenceNumber, next.event.enqueuedTime, next.payload);
      this.appended.emit(next.event);
      next.resolve(next.event);
    }
  }

  read(partitionId: string, fromSequenceNumber: number, max: number): StoredEvent[] {
    this.applyRetention();
    return this.partition(partitionId).read(fromSequenceNumber, max);
  }

  sequenceNumberAtTime(partitionId: string, time: number): number {
    this.applyRetention();
    return this.partition(partitionId).sequenceNumberAtTime(time);
  }

  info(partitionId: string): PartitionInfo {
    this.applyRetention();
    return this.partition(partitionId).info();
  }

  onAppend(listener: (event: StoredEvent) => void): () => void {
    return this.appended.add(listener);
  }

  private partition(partitionId: string): Partition {
    const partition = this.partitions.get(partitionId);
    if (!partition) throw new HubError('ArgumentInvalid', `Unknown partition ${partitionId}`);
    return partition;
  }

  private applyRetention(): void {
    this.appendsSinceRetention = 0;
    const cutoff = this.options.clock.now() - this.options.retentionMs;
    for (const partition of this.partitions.values()) partition.dropBefore(cutoff);
    this.options.store.dropEventsBefore(cutoff);
  }
}
