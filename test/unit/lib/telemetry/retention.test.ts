/**
 * The retention purge on the in-memory store with a fake clock: what goes and what stays, that
 * every query is a key range of one partition reading only expired rows, that a run's work is
 * bounded and the next run continues where it stopped, and the timer's log line.
 */
import type { Entity, EntityStore, RowRange } from '../../../../lib/storage/entity-store';
import { clockAt } from '../../../support/clock';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { TableNames, type TableName } from '../../../../lib/storage/tables';
import { deadLetterEntity, devicePartitionKey } from '../../../../lib/telemetry/entities';
import { TelemetryProcessor } from '../../../../lib/telemetry/processor';
import {
  createRetentionTimer,
  expiredRowKeyFrom,
  purgeExpired,
  timedRowKeysEnd,
  unpositionedRowKeys,
  type PurgeSummary,
} from '../../../../lib/telemetry/retention';
import { contextLoggingTo } from '../../../support/http';
import {
  alertThreshold,
  dayMs,
  expectedAfterPurge,
  expectedBeforePurge,
  historyBatch,
  readingDevices,
  retentionDays,
} from '../../../support/telemetry-history';

interface Query {
  table: TableName;
  partitionKey: string;
  range: RowRange;
  returned: number;
}

/** The in-memory store, recording what the purge asks of it (a spy, not a replacement). */
class RecordingStore implements EntityStore {
  constructor(
    private readonly inner: EntityStore,
    readonly queries: Query[] = [],
    readonly seeks: { table: TableName; after: string }[] = [],
    readonly deleted: { value: number } = { value: 0 },
  ) {}
  get roundTrips(): number {
    return this.inner.roundTrips;
  }
  scoped(): EntityStore {
    return new RecordingStore(this.inner.scoped(), this.queries, this.seeks, this.deleted);
  }
  upsertBatch(table: TableName, pk: string, entities: readonly Entity[]): Promise<void> {
    return this.inner.upsertBatch(table, pk, entities);
  }
  get(table: TableName, pk: string, rk: string) {
    return this.inner.get(table, pk, rk);
  }
  writeIf(table: TableName, entity: Entity, etag: string | undefined) {
    return this.inner.writeIf(table, entity, etag);
  }
  async queryPartition(table: TableName, partitionKey: string, range: RowRange) {
    const rows = await this.inner.queryPartition(table, partitionKey, range);
    this.queries.push({ table, partitionKey, range, returned: rows.length });
    return rows;
  }
  deleteBatch(table: TableName, pk: string, rowKeys: readonly string[]): Promise<void> {
    this.deleted.value += rowKeys.length;
    return this.inner.deleteBatch(table, pk, rowKeys);
  }
  nextPartitionKey(table: TableName, after: string) {
    this.seeks.push({ table, after });
    return this.inner.nextPartitionKey(table, after);
  }
}

const now0 = Date.parse('2026-11-29T12:00:00.000Z');

async function seeded(nowMs = now0): Promise<MemoryEntityStore> {
  const memory = new MemoryEntityStore();
  memory.clock = clockAt(() => nowMs);
  const processor = new TelemetryProcessor(memory, {
    alertThreshold,
    deadLetterMaxBodyBytes: 4096,
    clock: clockAt(() => nowMs),
  });
  const batch = historyBatch(nowMs);
  await processor.processBatch(batch.messages, batch.triggerMetadata);
  return memory;
}

function counts(memory: MemoryEntityStore) {
  return {
    telemetry: memory.rows(TableNames.telemetry).length,
    alerts: memory.rows(TableNames.alerts).length,
    deadletters: memory.rows(TableNames.deadLetters).length,
    devicestate: memory.rows(TableNames.deviceState).length,
  };
}

function enqueuedTimes(memory: MemoryEntityStore, table: TableName): number[] {
  return memory.rows(table).map((e) => (e.enqueuedTime as Date).getTime());
}

describe('purgeExpired', () => {
  it('deletes readings, alerts and dead letters enqueued before now - retention, keeps the rest', async () => {
    const memory = await seeded();
    expect(counts(memory)).toEqual(expectedBeforePurge);
    const state = memory.rows(TableNames.deviceState);

    const summary = await purgeExpired(memory, { retentionDays, clock: clockAt(() => now0) });

    expect(counts(memory)).toEqual(expectedAfterPurge);
    const cutoff = now0 - retentionDays * dayMs;
    for (const table of [TableNames.telemetry, TableNames.alerts, TableNames.deadLetters]) {
      expect(Math.min(...enqueuedTimes(memory, table))).toBe(
        table === TableNames.deadLetters ? now0 - 2 * dayMs : cutoff,
      );
    }
    expect(memory.rows(TableNames.deviceState)).toEqual(state);
    expect(summary).toMatchObject({
      cutoffMs: cutoff,
      deleted: {
        telemetry: expectedBeforePurge.telemetry - expectedAfterPurge.telemetry,
        alerts: expectedBeforePurge.alerts - expectedAfterPurge.alerts,
        deadletters: expectedBeforePurge.deadletters - expectedAfterPurge.deadletters,
      },
      complete: true,
    });
  });

  it('queries only the expired key range of one partition and never reads a row it keeps', async () => {
    const store = new RecordingStore(await seeded());
    const summary = await purgeExpired(store, { retentionDays, clock: clockAt(() => now0) });

    const cutoff = now0 - retentionDays * dayMs;
    const timed = { rowKeyFrom: expiredRowKeyFrom(cutoff), rowKeyBefore: timedRowKeysEnd };
    const unpositioned = { ...unpositionedRowKeys, writtenBefore: new Date(cutoff) };
    expect(store.queries.length).toBeGreaterThan(0);
    for (const { table, range } of store.queries) {
      const { limit: _limit, keysOnly, ...bounds } = range;
      expect(keysOnly).toBe(true);
      // Every query is a RowKey range of one partition; dead letters have a second one.
      if (table === TableNames.deadLetters) expect([timed, unpositioned]).toContainEqual(bounds);
      else expect(bounds).toEqual(timed);
    }
    const returned = store.queries.reduce((sum, q) => sum + q.returned, 0);
    expect(returned).toBe(store.deleted.value);
    // Partitions are found by seeking past the previous one: one seek per partition per table,
    // plus one per table that finds the end.
    expect(store.seeks).toHaveLength(summary.partitions + 3);
    expect(summary.partitions).toBe(2 * readingDevices.length + readingDevices.length + 2);
  });

  it('keeps everything newer as the fake clock advances, then purges it once it is old', async () => {
    const memory = await seeded();
    let now = now0;
    await purgeExpired(memory, { retentionDays, clock: clockAt(() => now) });
    expect(counts(memory)).toEqual(expectedAfterPurge);
    // Half a day later the readings enqueued exactly at the first cutoff have expired too.
    now += dayMs / 2;
    await purgeExpired(memory, { retentionDays, clock: clockAt(() => now) });
    expect(counts(memory)).toEqual({ telemetry: 2, alerts: 2, deadletters: 4, devicestate: 2 });

    now = now0 + 7 * dayMs;
    const summary = await purgeExpired(memory, { retentionDays, clock: clockAt(() => now) });
    expect(summary.complete).toBe(true);
    expect(counts(memory)).toEqual({ telemetry: 0, alerts: 0, deadletters: 0, devicestate: 2 });
  });

  it('ages dead letters without a hub position by when they were written', async () => {
    const memory = await seeded();
    const letter = (detail: string) =>
      deadLetterEntity({
        reason: 'missing-position',
        detail,
        deviceId: 'dev-a',
        messageId: undefined,
        correlationId: undefined,
        enqueuedMs: undefined,
        partition: '0',
        sequenceNumber: undefined,
        offset: undefined,
        contentType: undefined,
        contentEncoding: undefined,
        body: Buffer.from(detail),
        bodySize: detail.length,
        systemProperties: {},
        properties: {},
      });
    const old = letter('written 10 days ago');
    const recent = letter('written a day ago');
    const partitionKey = devicePartitionKey('dev-a');
    memory.clock = clockAt(() => now0 - 10 * dayMs);
    await memory.upsertBatch(TableNames.deadLetters, partitionKey, [old]);
    memory.clock = clockAt(() => now0 - dayMs);
    await memory.upsertBatch(TableNames.deadLetters, partitionKey, [recent]);
    const unpositioned = () =>
      memory.rows(TableNames.deadLetters).filter((e) => e.reason === 'missing-position');

    await purgeExpired(memory, { retentionDays, clock: clockAt(() => now0) });
    expect(unpositioned().map((e) => e.detail)).toEqual(['written a day ago']);
    expect(memory.rows(TableNames.deadLetters)).toHaveLength(expectedAfterPurge.deadletters + 1);

    await purgeExpired(memory, { retentionDays, clock: clockAt(() => now0 + 7 * dayMs) });
    expect(unpositioned()).toEqual([]);
  });

  it('stops at its request budget and the next run continues where it stopped', async () => {
    const memory = await seeded();
    const store = new RecordingStore(memory);
    const runs: PurgeSummary[] = [];
    const maxRequests = 7;
    for (let i = 0; i < 20 && runs.at(-1)?.complete !== true; i += 1) {
      const seeksBefore = store.seeks.length;
      runs.push(
        await purgeExpired(store, { retentionDays, clock: clockAt(() => now0), maxRequests }),
      );
      if (i > 0 && runs.at(-2)?.complete === false) {
        // Resumes past the partitions already finished instead of starting over.
        const first = store.seeks[seeksBefore];
        expect(first !== undefined && (first.after !== '' || first.table !== 'telemetry')).toBe(
          true,
        );
      }
    }
    expect(runs.length).toBeGreaterThan(2);
    expect(runs.at(-1)?.complete).toBe(true);
    for (const run of runs) expect(run.requests).toBeLessThanOrEqual(maxRequests);
    expect(counts(memory)).toEqual(expectedAfterPurge);
    // Every partition was finished exactly once across the runs.
    expect(runs.reduce((sum, r) => sum + r.partitions, 0)).toBe(3 * readingDevices.length + 2);
  });

  it('raises a budget too small to finish a partition, so runs still make progress', async () => {
    const memory = await seeded();
    let last: PurgeSummary | undefined;
    for (let i = 0; i < 40 && last?.complete !== true; i += 1) {
      last = await purgeExpired(memory, {
        retentionDays,
        clock: clockAt(() => now0),
        maxRequests: 1,
      });
      expect(last.requests).toBeLessThanOrEqual(7);
    }
    expect(last?.complete).toBe(true);
    expect(counts(memory)).toEqual(expectedAfterPurge);
  });

  it('deletes a large expired range in pages, 100 rows per transaction', async () => {
    const memory = new MemoryEntityStore();
    const partitionKey = devicePartitionKey('busy');
    const rows: Entity[] = Array.from({ length: 2500 }, (_, i) => ({
      partitionKey,
      rowKey: expiredRowKeyFrom(now0 - 30 * dayMs - i),
    }));
    await memory.upsertBatch(TableNames.telemetry, partitionKey, rows);
    const before = memory.roundTrips;
    const summary = await purgeExpired(memory, { retentionDays, clock: clockAt(() => now0) });
    expect(summary.deleted.telemetry).toBe(2500);
    expect(memory.rows(TableNames.telemetry)).toEqual([]);
    // 3 pages + 25 transactions + 4 seeks + the cursor read: far fewer than one per row.
    expect(memory.roundTrips - before).toBe(3 + 25 + 4 + 1);
  });
});

describe('the retention timer', () => {
  // Requests: cursor read, 11 seeks (2 + 2 + 4 partitions, one end per table), a query and a
  // delete transaction per partition, a second (position-less) query per dead-letter partition;
  // no cursor write (the run completed from the start).
  it('logs one line with the counts of the run', async () => {
    const memory = await seeded();
    const logs: string[] = [];
    const timer = createRetentionTimer(() => ({
      store: memory,
      retentionDays,
      clock: clockAt(() => now0),
    }));
    await timer({ isPastDue: false, scheduleStatus: undefined } as never, contextLoggingTo(logs));
    expect(logs).toEqual([
      'telemetry retention cutoff=2026-11-22T12:00:00.000Z telemetry=6 alerts=6 deadletters=4 partitions=8 requests=32 complete=true',
    ]);
  });

  it('logs a failure without secrets and rethrows it, so the run shows as failed', async () => {
    const memory = await seeded();
    memory.failure = () => new Error('connect ECONNREFUSED AccountKey=c2VjcmV0');
    const logs: string[] = [];
    const timer = createRetentionTimer(() => ({
      store: memory,
      retentionDays,
      clock: clockAt(() => now0),
    }));
    await expect(timer({ isPastDue: false } as never, contextLoggingTo(logs))).rejects.toThrow();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^telemetry retention: purge failed: /);
    expect(logs[0]).not.toMatch(/c2VjcmV0/);
  });
});
