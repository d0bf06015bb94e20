/**
 * The Event Hub-compatible log of device-to-cloud telemetry: a fixed set of partitions, each an
 * ordered sequence of events numbered from 0. Events are visible to readers only once durable,
 * and are dropped after the retention period.
 */
import type { Clock, DeviceToCloud, PartitionInfo, StoredEvent, TelemetryInput } from './contracts';
import { HubError } from './contracts';
import { Listeners } from './listeners';
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

class Partition {
  /** Durable, retained events; `events[head]` is the oldest. */
  private events: StoredEvent[] = [];
  private head = 0;
  /** The next sequence number to assign (assigned before the write is durable). */
  nextSequenceNumber: number;
  /** The last durable event ever appended, even if retention dropped it since. */
  private last: StoredEvent | undefined;

  constructor(
    readonly id: string,
    recovered: readonly StoredEvent[],
    nextSequenceNumber: number,
  ) {
    this.events = [...recovered];
    this.last = recovered[recovered.length - 1];
    const afterLast = this.last ? this.last.sequenceNumber + 1 : 0;
    this.nextSequenceNumber = Math.max(nextSequenceNumber, afterLast);
  }

  get lastEnqueuedTime(): number {
    return this.last?.enqueuedTime ?? 0;
  }

  commit(event: StoredEvent): void {
    // Commits arrive in sequence order (group commit resolves in call order); stay sorted anyway.
    const tail = this.events[this.events.length - 1];
    if (!tail || tail.sequenceNumber < event.sequenceNumber) {
      this.events.push(event); // the normal case; splice would copy the whole array
    } else {
      let at = this.events.length;
      while (at > this.head && this.events[at - 1]!.sequenceNumber > event.sequenceNumber) at--;
      this.events.splice(at, 0, event);
    }
    if (!this.last || event.sequenceNumber > this.last.sequenceNumber) this.last = event;
  }

  dropBefore(time: number): void {
    while (this.head < this.events.length && this.events[this.head]!.enqueuedTime < time) {
      this.head++;
    }
    // Compact occasionally rather than shifting on every drop.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first retained event with sequence number ≥ `sequenceNumber`. */
  private indexOfSequence(sequenceNumber: number): number {
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.sequenceNumber < sequenceNumber) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  read(fromSequenceNumber: number, max: number): StoredEvent[] {
    if (max <= 0) return [];
    const start = this.indexOfSequence(fromSequenceNumber);
    return this.events.slice(start, start + max);
  }

  sequenceNumberAtTime(time: number): number {
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.enqueuedTime < time) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.events.length ? this.events[lo]!.sequenceNumber : this.committedNext();
  }

  /** The sequence number after the last durable event. */
  private committedNext(): number {
    return this.last ? this.last.sequenceNumber + 1 : this.nextSequenceNumber;
  }

  info(): PartitionInfo {
    const first = this.events[this.head];
    const next = this.committedNext();
    return {
      partitionId: this.id,
      // Event Hubs reports -1 for a partition that never held an event.
      beginSequenceNumber: first ? first.sequenceNumber : next === 0 ? -1 : next,
      lastEnqueuedSequenceNumber: next - 1,
      lastEnqueuedOffset: String(next - 1),
      lastEnqueuedTime: this.lastEnqueuedTime,
      isEmpty: first === undefined,
    };
  }
}

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
    recoveredEvents: Map<string, StoredEvent[]>,
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

  async append(input: TelemetryInput): Promise<StoredEvent> {
    const partitionId = this.partitionOf(input.deviceId);
    const partition = this.partition(partitionId);
    const sequenceNumber = partition.nextSequenceNumber++;
    // Enqueued times never go backwards within a partition, so time lookups can bisect.
    const enqueuedTime = Math.max(this.options.clock.now(), partition.lastEnqueuedTime);
    const event: StoredEvent = {
      ...input,
      properties: { ...input.properties },
      partitionId,
      sequenceNumber,
      offset: String(sequenceNumber),
      enqueuedTime,
    };
    if (++this.appendsSinceRetention >= 1024) this.applyRetention();
    await this.options.store.appendEvent(event);
    // Group commit resolves appends in call order, so commits stay in sequence order.
    partition.commit(event);
    this.appended.emit(event);
    return event;
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
