/**
 * The Event Hub-compatible log of device-to-cloud telemetry: a fixed set of partitions, each an
 * ordered sequence of events numbered from 0. Events are visible to readers only once durable,
 * and are dropped after the retention period.
 */
import type { Clock, DeviceToCloud, PartitionInfo, StoredEvent, TelemetryInput } from './contracts';
import { HubError } from './contracts';
import { FRAME_HEADROOM } from './framed-log';
import { Listeners } from './listeners';
import { decodeEvent, encodeEvent, peekEvent } from './record-codec';
import type { CoreStore } from './store';

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
 * One partition's retained events, kept encoded (one Buffer each, off the JS heap) with parallel
 * arrays of sequence numbers and enqueued times for lookups; decoded only when read.
 */
class Partition {
  private payloads: Buffer[] = [];
  private sequenceNumbers: number[] = [];
  private times: number[] = [];
  /** Index of the oldest retained event. */
  private head = 0;
  /** The next sequence number to assign (assigned before the write is durable). */
  nextSequenceNumber: number;
  /** The last durable event ever appended, even if retention dropped it since. */
  private lastSequenceNumber = -1;
  lastEnqueuedTime = 0;
  /** Enqueued time given to the latest append, durable or not. */
  lastAssignedTime = 0;
  /** Appends not visible yet, by sequence number. */
  readonly pending = new Map<number, PendingAppend>();
  /** The sequence number that becomes visible next. */
  nextToCommit: number;

  constructor(
    readonly id: string,
    recovered: readonly Buffer[],
    nextSequenceNumber: number,
  ) {
    for (const payload of recovered) {
      const { sequenceNumber, enqueuedTime } = peekEvent(payload);
      this.commit(sequenceNumber, enqueuedTime, payload);
    }
    this.nextSequenceNumber = Math.max(nextSequenceNumber, this.lastSequenceNumber + 1);
    // Events retention already dropped still count as appended.
    this.lastSequenceNumber = this.nextSequenceNumber - 1;
    this.lastAssignedTime = this.lastEnqueuedTime;
    this.nextToCommit = this.nextSequenceNumber;
  }

  commit(sequenceNumber: number, enqueuedTime: number, payload: Buffer): void {
    let at = this.payloads.length;
    // Commits arrive in sequence order (group commit resolves in call order); stay sorted anyway.
    while (at > this.head && this.sequenceNumbers[at - 1]! > sequenceNumber) at--;
    if (at === this.payloads.length) {
      this.payloads.push(payload);
      this.sequenceNumbers.push(sequenceNumber);
      this.times.push(enqueuedTime);
    } else {
      this.payloads.splice(at, 0, payload);
      this.sequenceNumbers.splice(at, 0, sequenceNumber);
      this.times.splice(at, 0, enqueuedTime);
    }
    if (sequenceNumber > this.lastSequenceNumber) {
      this.lastSequenceNumber = sequenceNumber;
      this.lastEnqueuedTime = Math.max(this.lastEnqueuedTime, enqueuedTime);
    }
  }

  dropBefore(time: number): void {
    while (this.head < this.times.length && this.times[this.head]! < time) {
      this.payloads[this.head] = EMPTY; // release the buffer now; the slot goes at compaction
      this.head++;
    }
    // Compact occasionally rather than shifting on every drop.
    if (this.head > 1024 && this.head * 2 > this.payloads.length) {
      this.payloads = this.payloads.slice(this.head);
      this.sequenceNumbers = this.sequenceNumbers.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  /** First index ≥ head whose value in `sorted` is ≥ `value`. */
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
    if (max <= 0) return [];
    const start = this.lowerBound(this.sequenceNumbers, fromSequenceNumber);
    const end = Math.min(this.payloads.length, start + max);
    const events: StoredEvent[] = [];
    for (let i = start; i < end; i++) events.push(decodeEvent(this.payloads[i]!));
    return events;
  }

  sequenceNumberAtTime(time: number): number {
    const at = this.lowerBound(this.times, time);
    return at < this.times.length ? this.sequenceNumbers[at]! : this.lastSequenceNumber + 1;
  }

  info(): PartitionInfo {
    const empty = this.head >= this.payloads.length;
    const next = this.lastSequenceNumber + 1;
    return {
      partitionId: this.id,
      // Event Hubs reports -1 for a partition that never held an event.
      beginSequenceNumber: !empty ? this.sequenceNumbers[this.head]! : next === 0 ? -1 : next,
      lastEnqueuedSequenceNumber: this.lastSequenceNumber,
      lastEnqueuedOffset: String(this.lastSequenceNumber),
      lastEnqueuedTime: this.lastEnqueuedTime,
      isEmpty: empty,
    };
  }
}

const EMPTY = Buffer.alloc(0);

export interface D2COptions {
  clock: Clock;
  store: CoreStore;
  partitionCount: number;
  retentionMs: number;
}

export class D2CPartitions implements DeviceToCloud {
  readonly partitionIds: readonly string[];
  private readonly partitions = new Map<string, Partition>();
  private readonly appended = new Listeners<[StoredEvent]>();
  private readonly partitionCache = new Map<string, string>();
  private appendsSinceRetention = 0;

  constructor(
    private readonly options: D2COptions,
    recoveredEvents: Map<string, Buffer[]>,
    nextSequenceNumbers: Map<string, number>,
  ) {
    if (!Number.isInteger(options.partitionCount) || options.partitionCount < 1) {
      throw new RangeError('partitionCount must be a positive integer');
    }
    this.partitionIds = Array.from({ length: options.partitionCount }, (_, i) => String(i));
    for (const id of this.partitionIds) {
      this.partitions.set(
        id,
        new Partition(id, recoveredEvents.get(id) ?? [], nextSequenceNumbers.get(id) ?? 0),
      );
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
      partition.pending.set(sequenceNumber, pending);
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
      const next = partition.pending.get(partition.nextToCommit);
      if (!next?.done) return;
      partition.pending.delete(partition.nextToCommit);
      partition.nextToCommit++;
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
