/**
 * `EntityStore` on Azure Table storage (Azurite locally) through `@azure/data-tables`.
 *
 * Numbers are always written as Edm.Double: left untyped, the service would infer Int32 for whole
 * numbers and reject values beyond its range.
 */
import {
  odata,
  RestError,
  type TableClient,
  type TableEntity,
  type TransactionAction,
} from '@azure/data-tables';
import type { StorageAccess } from '../settings';
import {
  maxTransactionOperations,
  transactionChunks,
  type ConditionalWrite,
  type Entity,
  type EntityStore,
  type RowRange,
  type StoredEntity,
  type UpsertOptions,
} from './entity-store';
import { getTableClient, type TableName } from './tables';

type WireValue = string | boolean | Date | Uint8Array | { value: string; type: 'Double' };

type WireEntity = TableEntity<Record<string, WireValue>>;

function toWire(entity: Entity): WireEntity {
  const wire: WireEntity = { partitionKey: entity.partitionKey, rowKey: entity.rowKey };
  for (const [name, value] of Object.entries(entity)) {
    wire[name] = typeof value === 'number' ? { value: String(value), type: 'Double' } : value;
  }
  return wire;
}

/** Keeps the columns we wrote; drops service metadata (etag, timestamp, odata annotations). */
function fromWire(raw: Record<string, unknown>): Entity {
  const entity: Entity = {
    partitionKey: String(raw.partitionKey),
    rowKey: String(raw.rowKey),
  };
  for (const [name, value] of Object.entries(raw)) {
    if (name === 'etag' || name === 'timestamp' || name.startsWith('odata.')) continue;
    if (
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean' ||
      value instanceof Date ||
      value instanceof Uint8Array
    ) {
      entity[name] = value;
    }
  }
  return entity;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof RestError ? error.statusCode : undefined;
}

export type TableClientFactory = (table: TableName) => Promise<TableClient>;

export class TableEntityStore implements EntityStore {
  #roundTrips = 0;

  constructor(
    private readonly clientFor: TableClientFactory,
    private readonly parent?: TableEntityStore,
  ) {}

  scoped(): TableEntityStore {
    return new TableEntityStore(this.clientFor, this);
  }

  #count(): void {
    this.#roundTrips += 1;
    if (this.parent) this.parent.#count();
  }

  /** The production store: the app's storage setting, tables created on first use. */
  static fromSettings(storage: StorageAccess): TableEntityStore {
    return new TableEntityStore((table) => getTableClient(storage, table));
  }

  get roundTrips(): number {
    return this.#roundTrips;
  }

  async upsertBatch(
    table: TableName,
    partitionKey: string,
    entities: readonly Entity[],
    options: UpsertOptions = {},
  ): Promise<void> {
    if (entities.length === 0) return;
    const client = await this.clientFor(table);
    for (const chunk of transactionChunks(entities)) {
      if (chunk.some((e) => e.partitionKey !== partitionKey)) {
        throw new Error('upsertBatch: every entity must share the partition key');
      }
      if (options.expectNew === true && (await this.#insertAll(client, chunk))) continue;
      const actions: TransactionAction[] = chunk.map((e) => ['upsert', toWire(e), 'Replace']);
      this.#count();
      await client.submitTransaction(actions);
    }
  }

  /**
   * One insert transaction; false when a row already exists (409: the transaction changed
   * nothing, the caller upserts instead). Any other failure throws as the upsert's would.
   */
  async #insertAll(client: TableClient, chunk: readonly Entity[]): Promise<boolean> {
    this.#count();
    try {
      await client.submitTransaction(chunk.map((e) => ['create', toWire(e)]));
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw error;
    }
  }

  async get(
    table: TableName,
    partitionKey: string,
    rowKey: string,
  ): Promise<StoredEntity | undefined> {
    const client = await this.clientFor(table);
    this.#count();
    try {
      const raw = await client.getEntity<Record<string, unknown>>(partitionKey, rowKey);
      return { entity: fromWire(raw), etag: raw.etag };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async writeIf(
    table: TableName,
    entity: Entity,
    etag: string | undefined,
  ): Promise<ConditionalWrite> {
    const client = await this.clientFor(table);
    this.#count();
    try {
      const response =
        etag === undefined
          ? await client.createEntity(toWire(entity))
          : await client.updateEntity(toWire(entity), 'Replace', { etag });
      return { ok: true, etag: response.etag ?? '' };
    } catch (error) {
      const status = statusOf(error);
      // 409: created meanwhile; 412: changed meanwhile; 404: deleted meanwhile (a replace needs
      // the row). Each means "read again and decide", never a failure.
      if (status === 409 || status === 412 || status === 404) return { ok: false };
      throw error;
    }
  }

  async queryPartition(table: TableName, partitionKey: string, range: RowRange): Promise<Entity[]> {
    const client = await this.clientFor(table);
    let filter = odata`PartitionKey eq ${partitionKey}`;
    if (range.rowKeyFrom !== undefined) filter += odata` and RowKey ge ${range.rowKeyFrom}`;
    if (range.rowKeyBefore !== undefined) filter += odata` and RowKey lt ${range.rowKeyBefore}`;
    if (range.writtenBefore !== undefined)
      filter += odata` and Timestamp lt ${range.writtenBefore}`;
    const rows: Entity[] = [];
    const select = range.keysOnly === true ? ['PartitionKey', 'RowKey'] : undefined;
    const pages = client
      .listEntities<Record<string, unknown>>({
        queryOptions: { filter, ...(select && { select }) },
      })
      .byPage({ maxPageSize: Math.min(range.limit, 1000) });
    // Count each page as it is requested: the iterator issues one request per page.
    for (;;) {
      this.#count();
      const page = await pages.next();
      if (page.done === true) break;
      for (const raw of page.value) {
        rows.push(fromWire(raw));
        if (rows.length >= range.limit) return rows;
      }
      if (page.value.continuationToken === undefined) break;
    }
    return rows;
  }

  async deleteBatch(
    table: TableName,
    partitionKey: string,
    rowKeys: readonly string[],
  ): Promise<void> {
    if (rowKeys.length === 0) return;
    const client = await this.clientFor(table);
    const unique = [...new Set(rowKeys)];
    for (let start = 0; start < unique.length; start += maxTransactionOperations) {
      const chunk = unique.slice(start, start + maxTransactionOperations);
      this.#count();
      try {
        await client.submitTransaction(chunk.map((rowKey) => ['delete', { partitionKey, rowKey }]));
      } catch (error) {
        // A transaction fails whole when one row is missing (a concurrent purge deleted it):
        // delete the rest one by one.
        if (statusOf(error) !== 404) throw error;
        await this.#deleteEach(client, partitionKey, chunk);
      }
    }
  }

  async #deleteEach(client: TableClient, partitionKey: string, rowKeys: string[]): Promise<void> {
    for (const rowKey of rowKeys) {
      this.#count();
      try {
        await client.deleteEntity(partitionKey, rowKey);
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    }
  }

  async nextPartitionKey(table: TableName, after: string): Promise<string | undefined> {
    const client = await this.clientFor(table);
    const pages = client
      .listEntities<Record<string, unknown>>({
        queryOptions: { filter: odata`PartitionKey gt ${after}`, select: ['PartitionKey'] },
      })
      .byPage({ maxPageSize: 1 });
    // The service may answer a page with no rows and a continuation token (at a partition
    // server boundary); keep following it.
    for (;;) {
      this.#count();
      const page = await pages.next();
      if (page.done === true) return undefined;
      const first = page.value[0];
      if (first !== undefined) return String(first.partitionKey);
      if (page.value.continuationToken === undefined) return undefined;
    }
  }
}
