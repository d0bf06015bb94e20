/**
 * Retention of the app's own data: readings, alerts and dead letters enqueued more than
 * `TELEMETRY_RETENTION_DAYS` ago are deleted by a timer (`functions/retention.ts`).
 *
 * Cheap by key design: rows of these tables are keyed `<device>` / `<inverted enqueue time>_…`,
 * so within a partition the expired rows are one contiguous RowKey range at its end. A run walks
 * each table's partitions by key seek (`PartitionKey gt <previous>`, one row), reads only the
 * expired range of each (keys only) and deletes it in 100-row transactions. Rows it keeps are
 * never read, and no query scans a table. (Dead letters without a hub position have a range of
 * their own, aged by write time: see `unpositionedRowKeys`.)
 *
 * Bounded: a run stops after `maxRequests` storage requests and stores where it stopped in the
 * `retention` table, so the next run (on any instance) continues there instead of starting over.
 * Deleting is idempotent, so two overlapping runs only repeat work.
 */
import type { Clock } from '../clock';
import type { InvocationContext, Timer } from '@azure/functions';
import { maxTransactionOperations, type EntityStore, type RowRange } from '../storage/entity-store';
import { invertedTime } from '../storage/keys';
import { TableNames } from '../storage/tables';
import { describeError } from './errors';

/** Purged in this order; every one is keyed by device and inverted enqueue time. */
export const purgedTables = [
  TableNames.telemetry,
  TableNames.alerts,
  TableNames.deadLetters,
] as const;
export type PurgedTable = (typeof purgedTables)[number];

const dayMs = 86_400_000;
/** Exclusive upper RowKey bound of time-keyed rows: they start with 13 digits. */
export const timedRowKeysEnd = ':';
/**
 * Dead letters without a hub position are keyed `x_<sha256>` (`deadLetterRowKey` in
 * entities.ts), above every time-keyed row. They carry no enqueue time, so their age is when
 * they were last written (the service's Timestamp). IoT Hub stamps every event with a position,
 * so these are rare: only a misconfigured source produces them.
 */
export const unpositionedRowKeys = { rowKeyFrom: 'x_', rowKeyBefore: 'x`' } as const;
/**
 * Under a minute: 404 requests deleting 15,000 rows of 100 devices took 19 s against Azurite on a
 * busy 2-core machine (delete transactions are the slow part).
 */
export const defaultMaxRequests = 1000;
/**
 * The smallest budget that always makes progress: reading the cursor, a seek, a query and a
 * delete for each of a dead-letter partition's two ranges, saving the cursor. With less, a
 * partition could never be finished and every run would stop at the same place.
 */
const minMaxRequests = 7;
/** Keys per query page (the service's maximum); 10 delete transactions follow each page. */
const pageSize = 1000;

const cursorKey = { partitionKey: 'purge', rowKey: 'cursor' } as const;

export interface PurgeOptions {
  retentionDays: number;
  /** Tests pass a manual clock. */
  clock: Clock;
  /** Storage requests one run may make (reading and saving its place included). */
  maxRequests?: number;
}

export interface PurgeSummary {
  cutoffMs: number;
  deleted: Record<PurgedTable, number>;
  /** Partitions finished in this run. */
  partitions: number;
  requests: number;
  /** True when the run reached the end of every table; false when it stopped at its budget. */
  complete: boolean;
}

/** Where a run continues: the table in progress and the last partition finished in it. */
interface Cursor {
  table: number;
  after: string;
}

const start: Cursor = { table: 0, after: '' };

/** The first RowKey of rows enqueued before `cutoffMs` (rows of that exact millisecond stay). */
export function expiredRowKeyFrom(cutoffMs: number): string {
  return invertedTime(cutoffMs - 1);
}

/** The expired RowKey ranges of one partition of `table`. */
function expiredRanges(table: PurgedTable, cutoffMs: number): Omit<RowRange, 'limit'>[] {
  const timed = { rowKeyFrom: expiredRowKeyFrom(cutoffMs), rowKeyBefore: timedRowKeysEnd };
  if (table !== TableNames.deadLetters) return [timed];
  return [timed, { ...unpositionedRowKeys, writtenBefore: new Date(cutoffMs) }];
}

async function readCursor(store: EntityStore): Promise<Cursor> {
  const stored = await store.get(TableNames.retention, cursorKey.partitionKey, cursorKey.rowKey);
  if (stored === undefined) return start;
  const table = purgedTables.indexOf(stored.entity.table as PurgedTable);
  const after = stored.entity.after;
  return table >= 0 && typeof after === 'string' ? { table, after } : start;
}

async function saveCursor(store: EntityStore, cursor: Cursor): Promise<void> {
  await store.upsertBatch(TableNames.retention, cursorKey.partitionKey, [
    { ...cursorKey, table: purgedTables[cursor.table] ?? purgedTables[0], after: cursor.after },
  ]);
}

class PurgeRun {
  readonly summary: PurgeSummary;

  constructor(
    private readonly store: EntityStore,
    private readonly maxRequests: number,
    cutoffMs: number,
  ) {
    this.summary = {
      cutoffMs,
      deleted: { telemetry: 0, alerts: 0, deadletters: 0 },
      partitions: 0,
      requests: 0,
      complete: false,
    };
  }

  /** Requests left, keeping one to save the cursor. */
  #left(): number {
    return this.maxRequests - 1 - this.store.roundTrips;
  }

  /** Walks partitions from `cursor` until every table is done or the budget is spent. */
  async walk(cursor: Cursor): Promise<Cursor> {
    let { table, after } = cursor;
    for (;;) {
      const name = purgedTables[table];
      if (name === undefined) {
        this.summary.complete = true;
        return start;
      }
      // A seek, a query and a delete at least; otherwise stop before the seek.
      if (this.#left() < 3) return { table, after };
      const partitionKey = await this.store.nextPartitionKey(name, after);
      if (partitionKey === undefined) {
        table += 1;
        after = '';
        continue;
      }
      if (!(await this.#purgePartition(name, partitionKey))) return { table, after };
      this.summary.partitions += 1;
      after = partitionKey;
    }
  }

  /** Deletes a partition's expired ranges; false when the budget ran out before their end. */
  async #purgePartition(table: PurgedTable, partitionKey: string): Promise<boolean> {
    for (const range of expiredRanges(table, this.summary.cutoffMs)) {
      if (!(await this.#purgeRange(table, partitionKey, range))) return false;
    }
    return true;
  }

  async #purgeRange(
    table: PurgedTable,
    partitionKey: string,
    range: Omit<RowRange, 'limit'>,
  ): Promise<boolean> {
    for (;;) {
      const left = this.#left();
      if (left < 2) return false;
      const limit = Math.min(pageSize, (left - 1) * maxTransactionOperations);
      const rows = await this.store.queryPartition(table, partitionKey, {
        ...range,
        limit,
        keysOnly: true,
      });
      if (rows.length > 0) {
        await this.store.deleteBatch(
          table,
          partitionKey,
          rows.map((row) => row.rowKey),
        );
        this.summary.deleted[table] += rows.length;
      }
      if (rows.length < limit) return true;
    }
  }
}

/** One bounded purge run: deletes expired rows from where the previous run stopped. */
export async function purgeExpired(
  store: EntityStore,
  options: PurgeOptions,
): Promise<PurgeSummary> {
  const scoped = store.scoped();
  const run = new PurgeRun(
    scoped,
    Math.max(options.maxRequests ?? defaultMaxRequests, minMaxRequests),
    options.clock.now() - options.retentionDays * dayMs,
  );
  const cursor = await readCursor(scoped);
  const next = await run.walk(cursor);
  if (next.table !== cursor.table || next.after !== cursor.after) await saveCursor(scoped, next);
  run.summary.requests = scoped.roundTrips;
  return run.summary;
}

export function formatPurgeSummary(summary: PurgeSummary): string {
  return [
    'telemetry retention',
    `cutoff=${new Date(summary.cutoffMs).toISOString()}`,
    ...purgedTables.map((table) => `${table}=${summary.deleted[table]}`),
    `partitions=${summary.partitions}`,
    `requests=${summary.requests}`,
    `complete=${summary.complete}`,
  ].join(' ');
}

export interface RetentionServices {
  store: EntityStore;
  retentionDays: number;
  clock: Clock;
}

/** The timer's body: one purge run and one log line with its counts. */
export function createRetentionTimer(services: () => RetentionServices) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    try {
      const { store, retentionDays, clock } = services();
      context.log(formatPurgeSummary(await purgeExpired(store, { retentionDays, clock })));
    } catch (error) {
      // Rethrown so the run shows as failed; the next run continues from the saved place.
      context.error(`telemetry retention: purge failed: ${describeError(error)}`);
      throw error;
    }
  };
}
