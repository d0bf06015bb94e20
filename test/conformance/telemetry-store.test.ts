/**
 * The telemetry processor and read route against real Table storage (Azurite): what the unit
 * tests prove with the in-memory store must hold with the real service's keys, types and
 * transactions.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { TableClient } from '@azure/data-tables';
import { loadSettings } from '../../lib/settings';
import { TableEntityStore } from '../../lib/storage/table-entity-store';
import { TableNames, type TableName } from '../../lib/storage/tables';
import { createTelemetryReadHandler } from '../../lib/telemetry/http';
import { TelemetryProcessor } from '../../lib/telemetry/processor';
import { sampleBatch, tutorialEvents, type SampleEvent } from '../../lib/telemetry/sample-events';
import { createTelemetryHandler } from '../../lib/telemetry/trigger';
import { startAzurite, tableEntities, type AzuriteInstance } from '../support/azurite';

const start = new Date('2026-11-23T08:00:00.000Z');
const threshold = 15;

let azurite: AzuriteInstance;

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

function settingsEnv(connectionString: string) {
  return loadSettings({
    IOTHUB_CONNECTION_STRING:
      'HostName=localhost:4443;SharedAccessKeyName=service;SharedAccessKey=bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LW5vdC1zZWNyZXQh',
    IOTHUB_EVENTS_CONNECTION:
      'Endpoint=sb://localhost:5672/;SharedAccessKeyName=service;SharedAccessKey=bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LW5vdC1zZWNyZXQh;EntityPath=local-iothub;UseDevelopmentEmulator=true',
    AzureWebJobsStorage: connectionString,
    TELEMETRY_ALERT_THRESHOLD: String(threshold),
    TELEMETRY_DEADLETTER_MAX_BODY_BYTES: '4096',
  });
}

/** A processor wired exactly as the function app wires it (settings → table clients). */
function productionProcessor(): TelemetryProcessor {
  return TelemetryProcessor.fromSettings(settingsEnv(azurite.connectionString));
}

function invoke(processor: TelemetryProcessor, batch: ReturnType<typeof sampleBatch>) {
  const handler = createTelemetryHandler(() => processor);
  return handler(batch.messages, new InvocationContext({ triggerMetadata: batch.triggerMetadata }));
}

function rows(table: TableName): Promise<Record<string, unknown>[]> {
  return tableEntities(azurite.connectionString, table);
}

function mixedBatch(device: string, firstSequence: number): SampleEvent[] {
  const at = (i: number) => new Date(start.getTime() + i * 1000);
  const base = (i: number) => ({ sequenceNumber: firstSequence + i, enqueuedTime: at(i) });
  return [
    {
      ...base(0),
      deviceId: device,
      messageId: 'json-ok',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      properties: { property: 'tutorial' },
      body: Buffer.from(JSON.stringify({ deviceId: 'someone-else', windSpeed: 11.5 })),
    },
    {
      ...base(1),
      deviceId: device,
      messageId: 'b64-ok',
      contentEncoding: 'base64',
      body: Buffer.from(
        Buffer.from(JSON.stringify({ windSpeed: 16.25, gust: 20 })).toString('base64'),
      ),
    },
    {
      ...base(2),
      deviceId: device,
      messageId: 'utf16-ok',
      contentType: 'application/json',
      contentEncoding: 'utf-16',
      body: Buffer.from(JSON.stringify({ windSpeed: 12 }), 'utf16le'),
    },
    { ...base(3), deviceId: device, messageId: 'malformed', body: Buffer.from('{"windSpeed":') },
    { ...base(4), deviceId: device, messageId: 'not-json', body: Buffer.from('wind: strong') },
    {
      ...base(5),
      deviceId: device,
      messageId: 'wrong-type',
      body: Buffer.from('{"windSpeed":"x"}'),
    },
    { ...base(6), messageId: 'no-device', body: Buffer.from('{"windSpeed":3}') },
    {
      ...base(7),
      deviceId: device,
      messageId: 'binary',
      body: Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 37 + 128) % 256)),
    },
  ];
}

describe('telemetry processor on Azurite', () => {
  it('stores readings and dead letters, replays without duplicates, alerts above the threshold', async () => {
    const device = 'mixed#1';
    const batch = sampleBatch(mixedBatch(device, 100), '1');
    const processor = productionProcessor();
    await invoke(processor, batch);

    const readings = (await rows(TableNames.telemetry)).filter((r) => r.deviceId === device);
    expect(readings.map((r) => r.messageId).sort()).toEqual(['b64-ok', 'json-ok', 'utf16-ok']);
    expect(readings.find((r) => r.messageId === 'json-ok')).toMatchObject({
      windSpeed: 11.5,
      partition: '1',
      sequenceNumber: '100',
    });
    expect(JSON.parse(String(readings.find((r) => r.messageId === 'b64-ok')?.reading))).toEqual({
      windSpeed: 16.25,
      gust: 20,
    });

    const letters = (await rows(TableNames.deadLetters)).filter((l) =>
      ['malformed', 'not-json', 'wrong-type', 'no-device', 'binary'].includes(String(l.messageId)),
    );
    expect(Object.fromEntries(letters.map((l) => [l.messageId, l.reason]))).toEqual({
      malformed: 'not-json',
      'not-json': 'not-json',
      'wrong-type': 'invalid-reading',
      'no-device': 'missing-device-id',
      binary: 'invalid-text',
    });
    const binary = letters.find((l) => l.messageId === 'binary');
    expect(binary?.bodySize).toBe(5000);
    expect(binary?.bodyTruncated).toBe(true);
    expect((binary?.bodyBinary as Uint8Array).byteLength).toBe(4096);
    const system = JSON.parse(String(binary?.systemProperties)) as Record<string, unknown>;
    expect(system['iothub-connection-device-id']).toBe(device);

    const alerts = (await rows(TableNames.alerts)).filter((a) => a.deviceId === device);
    expect(alerts.map((a) => [a.messageId, a.windSpeed, a.threshold])).toEqual([
      ['b64-ok', 16.25, threshold],
    ]);

    const stateBefore = (await rows(TableNames.deviceState)).find((s) => s.deviceId === device);
    expect(stateBefore).toMatchObject({ messageId: 'utf16-ok', sequenceNumber: '102' });

    // Replay the same batch, with a fresh instance (no cached state) and with the same one.
    await invoke(productionProcessor(), batch);
    await invoke(processor, batch);
    const counts = async () => ({
      telemetry: (await rows(TableNames.telemetry)).filter((r) => r.deviceId === device).length,
      letters: (await rows(TableNames.deadLetters)).length,
      alerts: (await rows(TableNames.alerts)).filter((a) => a.deviceId === device).length,
    });
    expect(await counts()).toEqual({ telemetry: 3, letters: letters.length, alerts: 1 });
    const stateAfter = (await rows(TableNames.deviceState)).find((s) => s.deviceId === device);
    expect(stateAfter?.etag).toBe(stateBefore?.etag);
  });

  it('never moves the latest state back to an older reading', async () => {
    const device = 'ordering';
    const newer = sampleBatch(
      tutorialEvents({
        count: 3,
        devices: 1,
        start: new Date(start.getTime() + 3_600_000),
        firstSequenceNumber: 50,
      }).map((e) => ({ ...e, deviceId: device })),
    );
    const older = sampleBatch(
      tutorialEvents({ count: 3, devices: 1, start, firstSequenceNumber: 10 }).map((e) => ({
        ...e,
        deviceId: device,
      })),
    );
    await invoke(productionProcessor(), newer);
    await invoke(productionProcessor(), older);
    const state = (await rows(TableNames.deviceState)).find((s) => s.deviceId === device);
    expect(state).toMatchObject({ sequenceNumber: '52' });
    expect((await rows(TableNames.telemetry)).filter((r) => r.deviceId === device)).toHaveLength(6);
  });

  it('writes a 100-event batch in round trips per device, not per event', async () => {
    const processor = productionProcessor();
    const events = tutorialEvents({
      count: 100,
      devices: 4,
      start: new Date(start.getTime() + 7_200_000),
      firstSequenceNumber: 1000,
      windSpeed: () => 12,
    }).map((e) => ({ ...e, deviceId: `rt-${e.deviceId}` }));
    const batch = sampleBatch(events, '0');
    const summary = await processor.processBatch(batch.messages, batch.triggerMetadata);
    expect(summary).toMatchObject({ events: 100, stored: 100, devices: 4, deadLettered: 0 });
    // Per device: one telemetry transaction, one state read, one conditional state write.
    expect(summary.roundTrips).toBe(4 * 3);
  });

  it('inserts fresh rows in one transaction and falls back to an upsert when a row exists', async () => {
    const store = TableEntityStore.fromSettings(settingsEnv(azurite.connectionString).storage);
    const partitionKey = 'insert-first';
    const row = (rowKey: string, value: number) => ({ partitionKey, rowKey, value });
    const fresh = store.scoped();
    await fresh.upsertBatch(TableNames.telemetry, partitionKey, [row('a', 1), row('b', 1)], {
      expectNew: true,
    });
    // New rows: the insert transaction is the only request.
    expect(fresh.roundTrips).toBe(1);

    // A replay with one existing row (and a changed value): the insert fails whole, the upsert
    // stores every row with the new values, as a plain upsert would.
    const replay = store.scoped();
    await replay.upsertBatch(TableNames.telemetry, partitionKey, [row('b', 2), row('c', 2)], {
      expectNew: true,
    });
    expect(replay.roundTrips).toBe(2);
    const stored = (await rows(TableNames.telemetry)).filter(
      (r) => r.partitionKey === partitionKey,
    );
    expect(Object.fromEntries(stored.map((r) => [r.rowKey, r.value]))).toEqual({
      a: 1,
      b: 2,
      c: 2,
    });
  });

  it('reads newest first with from/to/limit through the route', async () => {
    const device = 'reader-1';
    const events = tutorialEvents({
      count: 20,
      devices: 1,
      start,
      windSpeed: (i) => i,
      firstSequenceNumber: 500,
    }).map((e, i) => ({
      ...e,
      deviceId: device,
      enqueuedTime: new Date(start.getTime() + i * 60_000),
    }));
    const processor = productionProcessor();
    await invoke(processor, sampleBatch(events, '3'));
    const handler = createTelemetryReadHandler(() => processor.store);
    const get = async (query: string) => {
      const response = await handler(
        new HttpRequest({
          method: 'GET',
          url: `http://localhost/api/devices/${device}/telemetry${query}`,
          params: { deviceId: device },
        }),
        new InvocationContext(),
      );
      expect(response.status).toBe(200);
      expect(typeof response.body).toBe('string');
      return JSON.parse(response.body as string) as {
        items: {
          windSpeed: number;
          sequenceNumber: number;
          enqueuedTime: string;
          partition: string;
        }[];
        latest?: { windSpeed: number };
      };
    };

    const all = await get('');
    expect(all.items.map((i) => i.windSpeed)).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
    expect(all.items[0]).toMatchObject({ sequenceNumber: 519, partition: '3' });
    expect(all.latest).toMatchObject({ windSpeed: 19 });

    const from = new Date(start.getTime() + 5 * 60_000).toISOString();
    const to = new Date(start.getTime() + 9 * 60_000).toISOString();
    const ranged = await get(`?from=${from}&to=${to}&limit=3`);
    expect(ranged.items.map((i) => i.windSpeed)).toEqual([9, 8, 7]);
    const window = await get(`?from=${from}&to=${to}`);
    expect(window.items.map((i) => i.windSpeed)).toEqual([9, 8, 7, 6, 5]);
  });
});

describe('telemetry processor during a storage outage', () => {
  it('throws instead of dropping the batch, and the replay stores it once storage is back', async () => {
    let storage = await startAzurite();
    const settings = settingsEnv(storage.connectionString);
    // Clients without the SDK's own retries, so the outage surfaces at once; they follow
    // `storage`, so the same processor sees the outage and the recovery.
    const clientFor = async (table: TableName) => {
      const client = TableClient.fromConnectionString(storage.connectionString, table, {
        allowInsecureConnection: true,
        retryOptions: { maxRetries: 0 },
      });
      await client.createTable();
      return client;
    };
    const processor = new TelemetryProcessor(new TableEntityStore(clientFor), settings.telemetry);
    try {
      await invoke(processor, sampleBatch(tutorialEvents({ count: 5, devices: 2, start })));
      await storage.stop();

      const batch = sampleBatch(
        tutorialEvents({
          count: 5,
          devices: 2,
          start: new Date(start.getTime() + 1000),
          firstSequenceNumber: 5,
        }),
      );
      await expect(invoke(processor, batch)).rejects.toThrow(/ECONNREFUSED/);

      // Storage comes back (empty: in-memory); the host replays the failed batch.
      storage = await startAzurite();
      await invoke(processor, batch);
      const stored = await tableEntities(storage.connectionString, TableNames.telemetry);
      expect(stored).toHaveLength(5);
      const latest = await tableEntities(storage.connectionString, TableNames.deviceState);
      expect(latest.map((s) => s.sequenceNumber).sort()).toEqual(['8', '9']);
    } finally {
      await storage.stop();
    }
  });
});
