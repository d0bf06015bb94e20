/**
 * The narrow table-storage surface the telemetry code needs, so its logic can be tested with an
 * in-memory fake and the real implementation stays a thin adapter over `@azure/data-tables`.
 *
 * Every method is one or more storage round trips; implementations count them so tests and
 * benchmarks can check that writes are batched.
 */
import type { TableName } from './tables';

/** Column values the stores use (Table storage EDM types: String, Double, Boolean, DateTime, Binary). */
export type ColumnValue = string | number | boolean | Date | Uint8Array;

export interface Entity {
  partitionKey: string;
  rowKey: string;
  [column: string]: ColumnValue;
}

export interface StoredEntity {
  entity: Entity;
  etag: string;
}

export interface RowRange {
  /** Inclusive lower RowKey bound. */
  rowKeyFrom?: string;
  /** Exclusive upper RowKey bound. */
  rowKeyBefore?: string;
  /** At most this many rows, in ascending RowKey order. */
  limit: number;
  /** Only rows last written before this instant (the service's Timestamp). */
  writtenBefore?: Date;
  /** Return only PartitionKey and RowKey (a purge needs nothing else; dead letters are large). */
  keysOnly?: boolean;
}

export type ConditionalWrite =
  | { ok: true; etag: string }
  /** Someone else wrote first (the entity exists, or its etag changed): re-read and decide again. */
  | { ok: false };

export interface UpsertOptions {
  /**
   * The rows are expected not to exist yet (fresh readings, alerts, dead letters). A store where
   * an insert costs less than an upsert may then try an insert transaction first and repeat it as
   * an upsert only when a row exists (a replayed batch): the outcome is the same upsert, one
   * round trip more on a replay. Azurite looks each upserted row up twice, an inserted one once.
   */
  expectNew?: boolean;
}

export interface EntityStore {
  /**
   * Inserts or replaces entities that all share `partitionKey`, as Table transactions of at most
   * 100 operations (fewer when large). Each transaction is atomic; a failure throws.
   */
  upsertBatch(
    table: TableName,
    partitionKey: string,
    entities: readonly Entity[],
    options?: UpsertOptions,
  ): Promise<void>;

  /** One entity, or undefined when it does not exist. */
  get(table: TableName, partitionKey: string, rowKey: string): Promise<StoredEntity | undefined>;

  /**
   * Optimistic write: creates the entity when `etag` is undefined, otherwise replaces it only if
   * its etag still matches.
   */
  writeIf(table: TableName, entity: Entity, etag: string | undefined): Promise<ConditionalWrite>;

  /** Rows of one partition in ascending RowKey order. */
  queryPartition(table: TableName, partitionKey: string, range: RowRange): Promise<Entity[]>;

  /**
   * Deletes rows of one partition, as Table transactions of at most 100 operations. A row that is
   * already gone (another purge got there first) is not an error.
   */
  deleteBatch(table: TableName, partitionKey: string, rowKeys: readonly string[]): Promise<void>;

  /**
   * The smallest PartitionKey greater than `after` that has a row ('' for the first), or
   * undefined when there is none: one key seek, so partitions can be walked without reading
   * their rows.
   */
  nextPartitionKey(table: TableName, after: string): Promise<string | undefined>;

  /** Storage requests made so far (each transaction counts once). */
  readonly roundTrips: number;

  /**
   * A view of the same storage with its own round-trip counter (requests still count in this
   * store too): lets one batch count its own requests while other batches run concurrently.
   */
  scoped(): EntityStore;
}

/** Table storage limits a transaction to 100 operations and a 4 MiB body. */
export const maxTransactionOperations = 100;
export const maxTransactionBytes = 2 * 1024 * 1024;

/** A rough upper bound of an entity's size on the wire (JSON, binary as base64). */
export function approximateEntityBytes(entity: Entity): number {
  let bytes = 64;
  for (const [name, value] of Object.entries(entity)) {
    bytes += name.length * 2 + 16;
    if (typeof value === 'string') bytes += value.length * 3;
    else if (value instanceof Uint8Array) bytes += Math.ceil(value.byteLength / 3) * 4;
    else bytes += 32;
  }
  return bytes;
}

/**
 * Splits one partition's entities into transaction-sized chunks. A later entity with the same
 * RowKey wins (a transaction may touch each row only once).
 */
export function transactionChunks(entities: readonly Entity[]): Entity[][] {
  const unique = new Map<string, Entity>();
  for (const entity of entities) unique.set(entity.rowKey, entity);
  const chunks: Entity[][] = [];
  let current: Entity[] = [];
  let currentBytes = 0;
  for (const entity of unique.values()) {
    const bytes = approximateEntityBytes(entity);
    if (
      current.length > 0 &&
      (current.length >= maxTransactionOperations || currentBytes + bytes > maxTransactionBytes)
    ) {
      chunks.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entity);
    currentBytes += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
