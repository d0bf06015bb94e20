/**
 * Keeps `devicestate` (one row per device) at the newest reading, never regressing when a batch
 * is replayed or events arrive out of order.
 *
 * Table storage cannot compare values server-side, so the write is optimistic: read the stored
 * position (enqueued time, sequence number) and etag, write only if ours is newer, conditioned
 * on that etag; a conflict means someone else wrote meanwhile, so read and decide again. The
 * position and etag we last saw are cached per device, which saves the read in the steady state
 * (one function instance owns a partition, and a device always maps to the same partition).
 */
import type { EntityStore } from '../storage/entity-store';
import { TableNames } from '../storage/tables';
import { devicePartitionKey, deviceStateEntity, latestRowKey } from './entities';
import { sequenceOf, timeMs } from './event-metadata';
import type { TelemetryRecord } from './model';

interface Position {
  enqueuedMs: number;
  sequenceNumber: bigint;
}

interface Known {
  etag: string;
  position: Position | undefined;
}

export function isNewer(candidate: Position, current: Position | undefined): boolean {
  if (current === undefined) return true;
  if (candidate.enqueuedMs !== current.enqueuedMs) return candidate.enqueuedMs > current.enqueuedMs;
  return candidate.sequenceNumber > current.sequenceNumber;
}

/** Of several readings, the newest by (enqueued time, sequence number). */
export function newest(records: readonly TelemetryRecord[]): TelemetryRecord | undefined {
  let best: TelemetryRecord | undefined;
  for (const record of records) if (best === undefined || isNewer(record, best)) best = record;
  return best;
}

const maxAttempts = 5;

export type StateOutcome = 'updated' | 'kept';

export class DeviceStateWriter {
  readonly #known = new Map<string, Known>();

  constructor(private readonly cacheSize = 10_000) {}

  async update(store: EntityStore, record: TelemetryRecord): Promise<StateOutcome> {
    const partitionKey = devicePartitionKey(record.deviceId);
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      const known = this.#known.get(partitionKey) ?? (await this.#read(store, partitionKey));
      if (known !== undefined && !isNewer(record, known.position)) return 'kept';
      const result = await store.writeIf(
        TableNames.deviceState,
        deviceStateEntity(record),
        known?.etag,
      );
      if (result.ok) {
        this.#remember(partitionKey, { etag: result.etag, position: record });
        return 'updated';
      }
      this.#known.delete(partitionKey);
    }
    throw new Error(
      'device state kept changing under concurrent writers; the batch will be retried',
    );
  }

  async #read(store: EntityStore, partitionKey: string): Promise<Known | undefined> {
    const stored = await store.get(TableNames.deviceState, partitionKey, latestRowKey);
    if (stored === undefined) return undefined;
    const enqueuedMs = timeMs(stored.entity.enqueuedTime);
    const sequenceNumber = sequenceOf(stored.entity.sequenceNumber);
    const known: Known = {
      etag: stored.etag,
      position:
        enqueuedMs !== undefined && sequenceNumber !== undefined
          ? { enqueuedMs, sequenceNumber }
          : undefined,
    };
    this.#remember(partitionKey, known);
    return known;
  }

  #remember(partitionKey: string, known: Known): void {
    this.#known.delete(partitionKey);
    this.#known.set(partitionKey, {
      etag: known.etag,
      position: known.position && {
        enqueuedMs: known.position.enqueuedMs,
        sequenceNumber: known.position.sequenceNumber,
      },
    });
    if (this.#known.size > this.cacheSize) {
      const oldest = this.#known.keys().next();
      if (oldest.done !== true) this.#known.delete(oldest.value);
    }
  }
}
