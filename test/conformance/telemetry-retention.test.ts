/**
 * The retention purge against real Table storage (Azurite), wired as the function app wires it:
 * the processor writes a history through the production table clients, the purge deletes what
 * is older than the retention with the service's own key-range queries and delete transactions.
 */
import { loadSettings } from '../../lib/settings';
import { clockAt } from '../support/clock';
import { TableEntityStore } from '../../lib/storage/table-entity-store';
import { TableNames } from '../../lib/storage/tables';
import { deadLetterEntity, devicePartitionKey } from '../../lib/telemetry/entities';
import { TelemetryProcessor } from '../../lib/telemetry/processor';
import { purgeExpired, type PurgeSummary } from '../../lib/telemetry/retention';
import { startAzurite, tableEntities, type AzuriteInstance } from '../support/azurite';
import {
  alertThreshold,
  dayMs,
  expectedAfterPurge,
  expectedBeforePurge,
  historyBatch,
  retentionDays,
} from '../support/telemetry-history';

let azurite: AzuriteInstance;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

function settings() {
  return loadSettings({
    IOTHUB_CONNECTION_STRING:
      'HostName=localhost:4443;SharedAccessKeyName=service;SharedAccessKey=bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LW5vdC1zZWNyZXQh',
    IOTHUB_EVENTS_CONNECTION:
      'Endpoint=sb://localhost:5672/;SharedAccessKeyName=service;SharedAccessKey=bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LW5vdC1zZWNyZXQh;EntityPath=local-iothub;UseDevelopmentEmulator=true',
    AzureWebJobsStorage: azurite.connectionString,
    TELEMETRY_ALERT_THRESHOLD: String(alertThreshold),
  });
}

async function counts(): Promise<Record<string, number>> {
  const tables = [
    TableNames.telemetry,
    TableNames.alerts,
    TableNames.deadLetters,
    TableNames.deviceState,
  ];
  const rows = await Promise.all(tables.map((t) => tableEntities(azurite.connectionString, t)));
  return Object.fromEntries(tables.map((t, i) => [t, rows[i]?.length ?? 0]));
}

async function clearTables(): Promise<void> {
  const store = TableEntityStore.fromSettings(settings().storage);
  for (const table of Object.values(TableNames)) {
    const rows = await tableEntities(azurite.connectionString, table);
    for (const row of rows)
      await store.deleteBatch(table, String(row.partitionKey), [String(row.rowKey)]);
  }
}

async function writeHistory(nowMs: number): Promise<void> {
  const processor = TelemetryProcessor.fromSettings(settings());
  const batch = historyBatch(nowMs);
  await processor.processBatch(batch.messages, batch.triggerMetadata);
}

const now0 = Date.parse('2026-11-29T12:00:00.000Z');

describe('telemetry retention on Azurite', () => {
  beforeEach(clearTables);

  it('deletes old readings, alerts and dead letters; newer rows and device state stay', async () => {
    await writeHistory(now0);
    expect(await counts()).toEqual(expectedBeforePurge);
    const state = await tableEntities(azurite.connectionString, TableNames.deviceState);

    const store = TableEntityStore.fromSettings(settings().storage);
    const summary = await purgeExpired(store, { retentionDays, clock: clockAt(() => now0) });

    expect(summary.complete).toBe(true);
    expect(await counts()).toEqual(expectedAfterPurge);
    const cutoff = now0 - retentionDays * dayMs;
    for (const table of [TableNames.telemetry, TableNames.alerts, TableNames.deadLetters]) {
      const rows = await tableEntities(azurite.connectionString, table);
      for (const row of rows)
        expect((row.enqueuedTime as Date).getTime()).toBeGreaterThanOrEqual(cutoff);
    }
    expect(await tableEntities(azurite.connectionString, TableNames.deviceState)).toEqual(state);

    // A week later on the fake clock, the rest has expired; the device state still stays.
    await purgeExpired(store, { retentionDays, clock: clockAt(() => now0 + 7 * dayMs) });
    expect(await counts()).toEqual({
      ...expectedAfterPurge,
      telemetry: 0,
      alerts: 0,
      deadletters: 0,
    });
  });

  it('resumes across runs with a small request budget and ends with the same result', async () => {
    await writeHistory(now0);
    const runs: PurgeSummary[] = [];
    for (let i = 0; i < 30 && runs.at(-1)?.complete !== true; i += 1) {
      // A fresh store per run, as a new instance would have: the place is kept in the table.
      const store = TableEntityStore.fromSettings(settings().storage);
      runs.push(
        await purgeExpired(store, { retentionDays, clock: clockAt(() => now0), maxRequests: 7 }),
      );
    }
    expect(runs.length).toBeGreaterThan(2);
    expect(runs.at(-1)?.complete).toBe(true);
    for (const run of runs) expect(run.requests).toBeLessThanOrEqual(7);
    expect(await counts()).toEqual(expectedAfterPurge);
  });

  it('deletes rows another purge already deleted without failing, and finds escaped partitions', async () => {
    const store = TableEntityStore.fromSettings(settings().storage);
    const partitionKey = devicePartitionKey('dev#with?odd/chars');
    const rows = Array.from({ length: 150 }, (_, i) => ({
      partitionKey,
      rowKey: `r${String(i).padStart(3, '0')}`,
    }));
    await store.upsertBatch(TableNames.telemetry, partitionKey, rows);
    expect(await store.nextPartitionKey(TableNames.telemetry, '')).toBe(partitionKey);
    expect(await store.nextPartitionKey(TableNames.telemetry, partitionKey)).toBeUndefined();

    await store.deleteBatch(TableNames.telemetry, partitionKey, ['r000', 'r001']);
    // r000 and r001 are gone: the first transaction fails whole and falls back to single deletes.
    const before = store.roundTrips;
    await store.deleteBatch(
      TableNames.telemetry,
      partitionKey,
      rows.map((r) => r.rowKey),
    );
    // The failed transaction, 100 single deletes (two of them answered 404), the second chunk.
    expect(store.roundTrips - before).toBe(1 + 100 + 1);
    expect(await tableEntities(azurite.connectionString, TableNames.telemetry)).toEqual([]);
  });

  it('ages dead letters without a hub position by the service Timestamp of their write', async () => {
    const store = TableEntityStore.fromSettings(settings().storage);
    const partitionKey = devicePartitionKey('dev-a');
    const letter = deadLetterEntity({
      reason: 'missing-position',
      detail: 'no enqueued time',
      deviceId: 'dev-a',
      messageId: undefined,
      correlationId: undefined,
      enqueuedMs: undefined,
      partition: '0',
      sequenceNumber: undefined,
      offset: undefined,
      contentType: undefined,
      contentEncoding: undefined,
      body: Buffer.from('{}'),
      bodySize: 2,
      systemProperties: {},
      properties: {},
    });
    await store.upsertBatch(TableNames.deadLetters, partitionKey, [letter]);
    const writtenAt = Date.now();

    // Azurite stamps the real time, so the fake clock is set relative to it.
    await purgeExpired(store, {
      retentionDays,
      clock: clockAt(() => writtenAt + (retentionDays - 1) * dayMs),
    });
    expect(await tableEntities(azurite.connectionString, TableNames.deadLetters)).toHaveLength(1);

    const summary = await purgeExpired(store, {
      retentionDays,
      clock: clockAt(() => writtenAt + (retentionDays + 1) * dayMs),
    });
    expect(summary.deleted.deadletters).toBe(1);
    expect(await tableEntities(azurite.connectionString, TableNames.deadLetters)).toEqual([]);
  });
});
