/**
 * An in-memory `EntityStore` with the same semantics and round-trip accounting as the table
 * store: for unit tests, benchmarks that exclude storage, and quick local experiments.
 */
import { systemClock, type Clock } from '../clock';
import {
  maxTransactionOperations,
  transactionChunks,
  type ConditionalWrite,
  type Entity,
  type EntityStore,
  type RowRange,
  type StoredEntity,
} from './entity-store';
import type { TableName } from './tables';

/** A stored entity and when it was last written (Table storage's Timestamp). */
interface Row extends StoredEntity {
  writtenMs: number;
}

interface SharedState {
  tables: Map<string, Map<string, Row>>;
  etagCounter: number;
}

export class MemoryEntityStore implements EntityStore {
  #roundTrips = 0;
  readonly #shared: SharedState;
  readonly #parent: MemoryEntityStore | undefined;
  /** When set, every request fails with the error it returns (simulates an outage). */
  failure: (() => Error) | undefined;
  /** The clock that stamps each write's Timestamp (of the root store); tests pass a fake one. */
  clock: Clock = systemClock;

  constructor(parent?: MemoryEntityStore) {
    this.#parent = parent;
    this.#shared = parent ? parent.#shared : { tables: new Map(), etagCounter: 0 };
  }

  scoped(): MemoryEntityStore {
    return new MemoryEntityStore(this);
  }

  #root(): MemoryEntityStore {
    return this.#parent ? this.#parent.#root() : this;
  }

  #count(): void {
    this.#roundTrips += 1;
    if (this.#parent) this.#parent.#count();
  }

  get roundTrips(): number {
    return this.#roundTrips;
  }

  /** Every entity of a table, sorted by PartitionKey then RowKey (for assertions). */
  rows(table: TableName): Entity[] {
    return [...(this.#shared.tables.get(table)?.values() ?? [])]
      .map((s) => s.entity)
      .sort((a, b) =>
        a.partitionKey === b.partitionKey
          ? compare(a.rowKey, b.rowKey)
          : compare(a.partitionKey, b.partitionKey),
      );
  }

  async upsertBatch(
    table: TableName,
    partitionKey: string,
    entities: readonly Entity[],
  ): Promise<void> {
    for (const chunk of transactionChunks(entities)) {
      await this.#request();
      if (chunk.some((e) => e.partitionKey !== partitionKey)) {
        throw new Error('upsertBatch: every entity must share the partition key');
      }
      for (const entity of chunk) this.#put(table, entity);
    }
  }

  async get(
    table: TableName,
    partitionKey: string,
    rowKey: string,
  ): Promise<StoredEntity | undefined> {
    await this.#request();
    const stored = this.#table(table).get(key(partitionKey, rowKey));
    return stored ? { entity: { ...stored.entity }, etag: stored.etag } : undefined;
  }

  async writeIf(
    table: TableName,
    entity: Entity,
    etag: string | undefined,
  ): Promise<ConditionalWrite> {
    await this.#request();
    const current = this.#table(table).get(key(entity.partitionKey, entity.rowKey));
    if (etag === undefined ? current !== undefined : current?.etag !== etag) {
      return { ok: false };
    }
    return { ok: true, etag: this.#put(table, entity) };
  }

  async queryPartition(table: TableName, partitionKey: string, range: RowRange): Promise<Entity[]> {
    await this.#request();
    const rows = [...this.#table(table).values()]
      .filter(
        (row) => range.writtenBefore === undefined || row.writtenMs < range.writtenBefore.getTime(),
      )
      .map((s) => s.entity)
      .filter(
        (e) =>
          e.partitionKey === partitionKey &&
          (range.rowKeyFrom === undefined || e.rowKey >= range.rowKeyFrom) &&
          (range.rowKeyBefore === undefined || e.rowKey < range.rowKeyBefore),
      )
      .sort((a, b) => compare(a.rowKey, b.rowKey))
      .slice(0, range.limit)
      .map((e) =>
        range.keysOnly === true ? { partitionKey: e.partitionKey, rowKey: e.rowKey } : { ...e },
      );
    return rows;
  }

  async deleteBatch(
    table: TableName,
    partitionKey: string,
    rowKeys: readonly string[],
  ): Promise<void> {
    const unique = [...new Set(rowKeys)];
    for (let start = 0; start < unique.length; start += maxTransactionOperations) {
      await this.#request();
      for (const rowKey of unique.slice(start, start + maxTransactionOperations)) {
        this.#table(table).delete(key(partitionKey, rowKey));
      }
    }
  }

  async nextPartitionKey(table: TableName, after: string): Promise<string | undefined> {
    await this.#request();
    let next: string | undefined;
    for (const { entity } of this.#table(table).values()) {
      const pk = entity.partitionKey;
      if (pk > after && (next === undefined || pk < next)) next = pk;
    }
    return next;
  }

  async #request(): Promise<void> {
    this.#count();
    // A real outage surfaces asynchronously, after the request was attempted.
    await Promise.resolve();
    const failure = this.#root().failure;
    if (failure) throw failure();
  }

  #table(table: TableName): Map<string, Row> {
    let rows = this.#shared.tables.get(table);
    if (!rows) {
      rows = new Map();
      this.#shared.tables.set(table, rows);
    }
    return rows;
  }

  #put(table: TableName, entity: Entity): string {
    this.#shared.etagCounter += 1;
    const etag = `W/"${this.#shared.etagCounter}"`;
    this.#table(table).set(key(entity.partitionKey, entity.rowKey), {
      entity: { ...entity },
      etag,
      writtenMs: this.#root().clock.now(),
    });
    return etag;
  }
}

function key(partitionKey: string, rowKey: string): string {
  return `${partitionKey}\u0000${rowKey}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
