/**
 * One poison reading must never block a partition: events whose fields Table storage cannot hold
 * are dead-lettered before the write, a row storage rejects anyway is isolated and dead-lettered
 * while its neighbours are stored, only transient failures make the handler throw, and a trigger
 * that keeps failing shows in the health report.
 *
 * The store here is the in-memory one plus Table storage's rejections (a string over 32K
 * characters, chosen rows), thrown the way `@azure/data-tables` throws them for a transaction.
 * `test/e2e/poison-telemetry.test.ts` proves the same against Azurite.
 */
import { InvocationContext, type LogLevel } from '@azure/functions';
import { RestError } from '@azure/data-tables';
import { checkHealth } from '../../../../lib/app/health';
import type { ConditionalWrite, Entity } from '../../../../lib/storage/entity-store';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { TableNames, type TableName } from '../../../../lib/storage/tables';
import { deadLetterEntity, recordRowKey } from '../../../../lib/telemetry/entities';
import { BatchMetadata } from '../../../../lib/telemetry/event-metadata';
import { fieldLimits } from '../../../../lib/telemetry/limits';
import { processEvent } from '../../../../lib/telemetry/process-event';
import { TelemetryProcessor } from '../../../../lib/telemetry/processor';
import { sampleBatch, type SampleEvent } from '../../../../lib/telemetry/sample-events';
import { StallMonitor } from '../../../../lib/telemetry/stall';
import { createTelemetryHandler } from '../../../../lib/telemetry/trigger';
import { clockAt } from '../../../support/clock';

const start = new Date('2026-11-23T08:00:00.000Z');
const maxStringChars = 32 * 1024;

function rejection(index: number, code: string): RestError {
  return new RestError(`${index}:rejected`, { statusCode: 400, code });
}

/** The memory store, rejecting what Table storage rejects (plus chosen rows) per transaction. */
class TableLimitsStore extends MemoryEntityStore {
  /** Telemetry rows refused as if out of range (the event's dead letter, same key, is accepted). */
  readonly rejectRows = new Set<string>();
  /** Tables whose every write fails with this (e.g. to reject even minimal dead letters). */
  readonly rejectTables = new Map<TableName, () => Error>();
  transactions = 0;

  #check(table: TableName, entities: readonly Entity[]): void {
    const forced = this.rejectTables.get(table);
    if (forced) throw forced();
    entities.forEach((entity, index) => {
      if (table === TableNames.telemetry && this.rejectRows.has(entity.rowKey))
        throw rejection(index, 'OutOfRangeInput');
      for (const value of Object.values(entity)) {
        if (typeof value === 'string' && value.length > maxStringChars) {
          throw rejection(index, 'PropertyValueTooLarge');
        }
      }
    });
  }

  override async upsertBatch(table: TableName, partitionKey: string, entities: readonly Entity[]) {
    this.transactions += 1;
    this.#check(table, entities);
    await super.upsertBatch(table, partitionKey, entities);
  }

  override async writeIf(
    table: TableName,
    entity: Entity,
    etag: string | undefined,
  ): Promise<ConditionalWrite> {
    this.#check(table, [entity]);
    return super.writeIf(table, entity, etag);
  }

  override scoped(): MemoryEntityStore {
    return this;
  }
}

function setup(store = new TableLimitsStore(), monitor = new StallMonitor()) {
  const processor = new TelemetryProcessor(store, {
    alertThreshold: 15,
    deadLetterMaxBodyBytes: 256,
    stallThresholdMs: 60_000,
  });
  const logs: { level: LogLevel; text: string }[] = [];
  const handler = createTelemetryHandler(() => processor, monitor);
  const invoke = (events: SampleEvent[], partition = '0') => {
    const batch = sampleBatch(events, partition);
    return handler(
      batch.messages,
      new InvocationContext({
        functionName: 'telemetry',
        triggerMetadata: batch.triggerMetadata,
        logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
      }),
    );
  };
  return { store, logs, invoke };
}

function reading(deviceId: string, sequenceNumber: number, extra: Partial<SampleEvent> = {}) {
  return {
    deviceId,
    sequenceNumber,
    enqueuedTime: new Date(start.getTime() + sequenceNumber * 1000),
    body: Buffer.from(JSON.stringify({ deviceId, windSpeed: 10 + sequenceNumber })),
    ...extra,
  };
}

function storedSequences(store: MemoryEntityStore, table: TableName, deviceId?: string) {
  return store
    .rows(table)
    .filter((row) => deviceId === undefined || row.deviceId === deviceId)
    .map((row) => Number(row.sequenceNumber))
    .sort((a, b) => a - b);
}

describe('fields a stored reading cannot hold', () => {
  const limits = { deadLetterMaxBodyBytes: 64 };
  const meta = (event: SampleEvent) => {
    const batch = sampleBatch([event]);
    return new BatchMetadata(batch.triggerMetadata, 1).forEvent(0);
  };
  const outcome = (extra: Partial<SampleEvent>) => {
    const event = reading('d1', 1, extra);
    return processEvent(event.body, meta(event), limits);
  };

  it.each([
    ['contentType', { contentType: 'a'.repeat(40_000) }, /^contentType is 40000 characters/],
    ['contentEncoding', { contentEncoding: 'x'.repeat(300) }, /^contentEncoding is 300/],
    ['messageId', { messageId: 'm'.repeat(2000) }, /^messageId is 2000/],
    ['correlationId', { correlationId: 'c'.repeat(5000) }, /^correlationId is 5000/],
    ['property value', { properties: { big: 'v'.repeat(40_000) } }, /^property "big" is 40000/],
    ['property name', { properties: { ['n'.repeat(300)]: 'v' } }, /^the name of property "n+…"/],
    [
      'all properties together',
      {
        properties: Object.fromEntries(
          Array.from({ length: 4 }, (_, i) => [`p${i}`, 'v'.repeat(5000)]),
        ),
      },
      /^the application properties \(as JSON\) is 200\d\d characters/,
    ],
  ])('dead-letters a reading whose %s is too large, naming the field', (_what, extra, detail) => {
    const result = outcome(extra);
    expect(result.kind).toBe('deadLetter');
    if (result.kind !== 'deadLetter') return;
    expect(result.letter.reason).toBe('field-too-large');
    expect(result.letter.detail).toMatch(detail);
  });

  it('dead-letters a reading with too many properties', () => {
    const properties = Object.fromEntries(
      Array.from({ length: fieldLimits.propertyCount + 1 }, (_, i) => [`p${i}`, 'v']),
    );
    const result = outcome({ properties });
    expect(result.kind === 'deadLetter' && result.letter.reason).toBe('too-many-properties');
  });

  it('stores fields exactly at their limits, untruncated', () => {
    const result = outcome({
      contentType: 'a'.repeat(fieldLimits.contentTypeChars),
      messageId: 'm'.repeat(fieldLimits.idChars),
      properties: { big: 'v'.repeat(fieldLimits.propertyValueChars) },
    });
    expect(result.kind).toBe('reading');
    if (result.kind !== 'reading') return;
    expect(result.record.messageId).toHaveLength(fieldLimits.idChars);
  });

  it('keeps the dead letter of any event storable (every text bounded)', () => {
    const event = reading('d1', 1, {
      contentType: '\u{1F600}'.repeat(30_000),
      messageId: 'm'.repeat(40_000),
      properties: { big: 'v'.repeat(40_000) },
    });
    const result = processEvent(event.body, meta(event), { deadLetterMaxBodyBytes: 32768 });
    if (result.kind !== 'deadLetter') throw new Error('expected a dead letter');
    const entity = deadLetterEntity(result.letter);
    for (const value of Object.values(entity)) {
      if (typeof value !== 'string') continue;
      expect(value.length).toBeLessThanOrEqual(16_000);
      // Never half a surrogate pair at the cut.
      expect(/[\uD800-\uDBFF]$/.test(value)).toBe(false);
    }
  });
});

describe('a poison reading in a batch', () => {
  it('stores every good reading of the partition and dead-letters the poison ones', async () => {
    const { store, logs, invoke } = setup();
    await invoke([
      reading('d1', 1),
      reading('d2', 2),
      reading('d1', 3, { contentType: 'a'.repeat(40_000) }),
      reading('d2', 4, { properties: { big: 'v'.repeat(40_000) } }),
      reading('d1', 5),
      reading('d2', 6),
    ]);
    expect(storedSequences(store, TableNames.telemetry)).toEqual([1, 2, 5, 6]);
    const letters = store.rows(TableNames.deadLetters);
    expect(letters.map((l) => [Number(l.sequenceNumber), l.reason])).toEqual(
      expect.arrayContaining([
        [3, 'field-too-large'],
        [4, 'field-too-large'],
      ]),
    );
    expect(letters.find((l) => l.sequenceNumber === '3')?.detail).toMatch(/^contentType/);
    expect(letters.find((l) => l.sequenceNumber === '4')?.detail).toMatch(/^property "big"/);
    expect(logs.map((l) => l.level)).not.toContain('error');
  });

  it('isolates a row storage rejects: the device keeps its other readings, others are untouched', async () => {
    const { store, logs, invoke } = setup();
    const events = [1, 2, 3, 4, 5, 6, 7].map((i) => reading(i === 6 ? 'd2' : 'd1', i));
    // Sequence 4 of d1 passes every check but is refused by the service (say OutOfRangeInput).
    const poisonKey = sampleRowKey(events[3]!);
    store.rejectRows.add(poisonKey);
    await invoke(events);

    expect(storedSequences(store, TableNames.telemetry, 'd1')).toEqual([1, 2, 3, 5, 7]);
    expect(storedSequences(store, TableNames.telemetry, 'd2')).toEqual([6]);
    const [letter, ...more] = store.rows(TableNames.deadLetters);
    expect(more).toEqual([]);
    expect(letter).toMatchObject({ reason: 'storage-rejected', rowKey: poisonKey, deviceId: 'd1' });
    expect(letter?.detail).toContain('OutOfRangeInput');
    expect(letter?.bodyText).toBe('{"windSpeed":14}');
    // The state points at a stored reading; alerts only for stored readings (windSpeed > 15).
    const state = store.rows(TableNames.deviceState).find((s) => s.deviceId === 'd1');
    expect(state?.sequenceNumber).toBe('7');
    expect(storedSequences(store, TableNames.alerts, 'd1')).toEqual([7]);
    const summary = logs.find((l) => l.text.startsWith('telemetry batch'))?.text;
    expect(summary).toContain('stored=6 deadLettered=1 (storage-rejected:1)');
  });

  it('stores a minimal dead letter when the full one is rejected too', async () => {
    const { store, invoke } = setup();
    const event = reading('d1', 1, { contentType: 'a'.repeat(40_000) });
    // The full dead letter holds a body; the minimal form does not.
    const original = store.upsertBatch.bind(store);
    store.upsertBatch = async (table, partitionKey, entities) => {
      if (table === TableNames.deadLetters && entities.some((e) => 'bodyText' in e)) {
        throw rejection(0, 'InvalidInput');
      }
      await original(table, partitionKey, entities);
    };
    await invoke([event, reading('d1', 2)]);
    expect(storedSequences(store, TableNames.telemetry)).toEqual([2]);
    expect(store.rows(TableNames.deadLetters)).toEqual([
      expect.objectContaining({
        reason: 'field-too-large',
        deadLetterRejected: 'InvalidInput',
        sequenceNumber: '1',
      }),
    ]);
  });

  it('rethrows when even the minimal dead letter fails (storage, not the event, is at fault)', async () => {
    const { store, invoke } = setup();
    store.rejectTables.set(TableNames.deadLetters, () => rejection(0, 'InvalidInput'));
    await expect(invoke([reading('d1', 1, { contentType: 'a'.repeat(40_000) })])).rejects.toThrow();
  });

  it('rethrows a transient failure at once, without splitting the batch', async () => {
    const { store, invoke } = setup();
    store.rejectTables.set(TableNames.telemetry, () => new RestError('busy', { statusCode: 503 }));
    await expect(invoke([1, 2, 3, 4].map((i) => reading('d1', i)))).rejects.toThrow('busy');
    expect(store.transactions).toBe(1);
  });
});

describe('a stalled telemetry trigger', () => {
  it('is reported as degraded with the failure class once past the threshold, and clears', async () => {
    let now = start.getTime();
    const monitor = new StallMonitor(clockAt(() => now));
    const { store, logs, invoke } = setup(new TableLimitsStore(), monitor);
    store.rejectTables.set(
      TableNames.telemetry,
      () => new RestError('throttled SharedAccessKey=c2VjcmV0', { statusCode: 503 }),
    );
    const events = [reading('secret-device', 1)];
    const up = () => Promise.resolve();
    const probes = { iotHubRegistry: up, iotHubService: up, storage: up };
    const health = () =>
      checkHealth(
        probes,
        () => undefined,
        1000,
        () => monitor.report(),
      );

    await expect(invoke(events, '3')).rejects.toThrow();
    now += 30_000;
    await expect(invoke(events, '3')).rejects.toThrow();
    expect((await health()).status).toBe('healthy');

    now += 31_000;
    await expect(invoke(events, '3')).rejects.toThrow();
    const report = await health();
    expect(report).toMatchObject({
      status: 'degraded',
      telemetry: { status: 'degraded', reason: 'throttled' },
    });
    expect(report.telemetry?.detail).toMatch(
      /^partition 3: the same batch has failed 3 times over 61 s/,
    );
    expect(JSON.stringify(report)).not.toMatch(/secret|windSpeed|SharedAccessKey/);
    const stalled = logs.filter((l) => l.text.includes('stalled'));
    expect(stalled).toHaveLength(1);
    expect(stalled[0]?.level).toBe('error');
    expect(stalled[0]?.text).toMatch(/partition 3 stalled: .* 61 s \(throttled\)/);

    store.rejectTables.clear();
    await invoke(events, '3');
    expect(await health()).toMatchObject({ status: 'healthy' });
    expect((await health()).telemetry).toBeUndefined();
  });
});

/** The row key a sample event's reading gets (its hub position). */
function sampleRowKey(event: SampleEvent): string {
  const batch = sampleBatch([event]);
  const meta = new BatchMetadata(batch.triggerMetadata, 1).forEvent(0);
  const result = processEvent(event.body, meta, { deadLetterMaxBodyBytes: 0 });
  if (result.kind !== 'reading') throw new Error('expected a reading');
  return recordRowKey(result.record);
}
