import { InvocationContext, type LogLevel } from '@azure/functions';
import { RestError } from '@azure/data-tables';
import { clockAt } from '../../../support/clock';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import type { Entity, UpsertOptions } from '../../../../lib/storage/entity-store';
import { TableNames, type TableName } from '../../../../lib/storage/tables';
import { TelemetryProcessor } from '../../../../lib/telemetry/processor';
import {
  sampleBatch,
  tutorialEvents,
  type SampleEvent,
} from '../../../../lib/telemetry/sample-events';
import {
  createTelemetryHandler,
  telemetryRetry,
  telemetryTriggerOptions,
} from '../../../../lib/telemetry/trigger';

const start = new Date('2026-11-23T08:00:00.000Z');
const threshold = 15;

function setup(store = new MemoryEntityStore()) {
  const processor = new TelemetryProcessor(store, {
    alertThreshold: threshold,
    deadLetterMaxBodyBytes: 64,
    clock: clockAt(() => start.getTime() + 5_000),
  });
  const logs: { level: LogLevel; text: string }[] = [];
  const handler = createTelemetryHandler(() => processor);
  const invoke = (batch: { messages: unknown[]; triggerMetadata: Record<string, unknown> }) =>
    handler(
      batch.messages,
      new InvocationContext({
        functionName: 'telemetry',
        triggerMetadata: batch.triggerMetadata,
        logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
      }),
    );
  return { store, processor, logs, invoke };
}

function mixedEvents(): SampleEvent[] {
  const valid = tutorialEvents({ count: 4, devices: 2, start });
  const base = { sequenceNumber: 0, enqueuedTime: start };
  return [
    ...valid,
    { ...base, deviceId: 'sim-0', sequenceNumber: 10, body: Buffer.from('{"windSpeed": ') },
    { ...base, deviceId: 'sim-1', sequenceNumber: 11, body: Buffer.from('plain words') },
    {
      ...base,
      deviceId: 'sim-2',
      sequenceNumber: 12,
      contentEncoding: 'base64',
      body: Buffer.from(Buffer.from('{"windSpeed":20}').toString('base64')),
    },
    { ...base, deviceId: 'sim-1', sequenceNumber: 14, body: Buffer.from('{"windSpeed":"fast"}') },
    { ...base, sequenceNumber: 13, body: Buffer.from('{"deviceId":"sim-0","windSpeed":1}') },
  ];
}

describe('telemetry trigger registration', () => {
  it('asks for bytes, many events, settings-based names and an unbounded backoff retry', () => {
    const options = telemetryTriggerOptions(async () => {});
    expect(options.trigger).toMatchObject({
      type: 'eventHubTrigger',
      connection: 'IOTHUB_EVENTS_CONNECTION',
      eventHubName: '%IOTHUB_EVENTS_NAME%',
      consumerGroup: '%IOTHUB_EVENTS_CONSUMER_GROUP%',
      cardinality: 'many',
      dataType: 'binary',
    });
    expect(options.retry).toEqual(telemetryRetry);
    expect(telemetryRetry).toMatchObject({ strategy: 'exponentialBackoff', maxRetryCount: -1 });
  });
});

describe('telemetry handler', () => {
  it('stores valid readings, dead-letters the rest, and logs a summary without bodies', async () => {
    const { store, logs, invoke } = setup();
    await invoke(sampleBatch(mixedEvents(), '0'));

    const readings = store.rows(TableNames.telemetry);
    expect(readings.map((r) => r.deviceId).sort()).toEqual([
      'sim-0',
      'sim-0',
      'sim-1',
      'sim-1',
      'sim-2',
    ]);
    const fromBase64 = readings.find((r) => r.deviceId === 'sim-2');
    expect(fromBase64).toMatchObject({ windSpeed: 20, base64: true, partition: '0' });

    const letters = store.rows(TableNames.deadLetters);
    expect(letters.map((l) => l.reason).sort()).toEqual([
      'invalid-reading',
      'missing-device-id',
      'not-json',
      'not-json',
    ]);
    const unattributed = letters.find((l) => l.reason === 'missing-device-id');
    expect(unattributed).toMatchObject({ bodyText: '{"deviceId":"sim-0","windSpeed":1}' });
    expect(unattributed?.deviceId).toBeUndefined();

    expect(store.rows(TableNames.alerts).map((a) => a.deviceId)).toEqual(['sim-2']);

    const summary = logs.find((l) => l.text.startsWith('telemetry batch'));
    expect(summary?.level).toBe('information');
    expect(summary?.text).toContain('events=9 stored=5 deadLettered=4');
    expect(summary?.text).toContain('alerts=1');
    expect(summary?.text).toContain('maxLagMs=5000');
    expect(logs.map((l) => l.text).join('\n')).not.toContain('plain words');
  });

  it('keeps the newest reading as the device state', async () => {
    const { store, invoke } = setup();
    const events = tutorialEvents({ count: 6, devices: 2, start, windSpeed: (i) => i });
    await invoke(sampleBatch(events));
    const states = store.rows(TableNames.deviceState);
    expect(states.map((s) => [s.deviceId, s.windSpeed, s.sequenceNumber])).toEqual([
      ['sim-0', 4, '4'],
      ['sim-1', 5, '5'],
    ]);
  });

  it('writes nothing new when a batch is replayed, and the state does not regress', async () => {
    const { store, invoke } = setup();
    const older = sampleBatch(tutorialEvents({ count: 10, devices: 2, start }));
    const newer = sampleBatch(
      tutorialEvents({
        count: 10,
        devices: 2,
        start: new Date(start.getTime() + 60_000),
        firstSequenceNumber: 10,
      }),
    );
    await invoke(older);
    await invoke(newer);
    const before = {
      telemetry: store.rows(TableNames.telemetry),
      state: store.rows(TableNames.deviceState),
    };
    await invoke(older);
    await invoke(newer);
    expect(store.rows(TableNames.telemetry)).toEqual(before.telemetry);
    expect(store.rows(TableNames.telemetry)).toHaveLength(20);
    expect(store.rows(TableNames.deviceState)).toEqual(before.state);
  });

  it('does not regress the state from another instance replaying older events', async () => {
    const store = new MemoryEntityStore();
    const first = setup(store);
    await first.invoke(
      sampleBatch(
        tutorialEvents({
          count: 2,
          devices: 1,
          start: new Date(start.getTime() + 1000),
          firstSequenceNumber: 5,
        }),
      ),
    );
    const second = setup(store); // fresh cache: must read the stored state first
    await second.invoke(sampleBatch(tutorialEvents({ count: 2, devices: 1, start })));
    expect(store.rows(TableNames.deviceState)[0]).toMatchObject({ sequenceNumber: '6' });
    expect(store.rows(TableNames.telemetry)).toHaveLength(4);
  });

  it('needs round trips per distinct device, not per event', async () => {
    const roundTrips = async (count: number, devices: number) => {
      const { store, invoke } = setup();
      const events = tutorialEvents({ count, devices, start, windSpeed: () => 10 });
      await invoke(sampleBatch(events));
      return store.roundTrips;
    };
    const tenEventsTwoDevices = await roundTrips(10, 2);
    const hundredEventsTwoDevices = await roundTrips(100, 2);
    const hundredEventsTenDevices = await roundTrips(100, 10);
    expect(hundredEventsTwoDevices).toBe(tenEventsTwoDevices);
    // telemetry transaction + state read + state write per device
    expect(hundredEventsTwoDevices).toBe(2 * 3);
    expect(hundredEventsTenDevices).toBe(10 * 3);
  });

  it('counts only its own round trips per batch when partitions run concurrently', async () => {
    const { store, processor } = setup();
    const batch = (prefix: string, partition: string) =>
      sampleBatch(
        tutorialEvents({ count: 20, devices: 2, start, windSpeed: () => 1 }).map((e) => ({
          ...e,
          deviceId: `${prefix}-${e.deviceId}`,
        })),
        partition,
      );
    const a = batch('a', '0');
    const b = batch('b', '1');
    const [first, second] = await Promise.all([
      processor.processBatch(a.messages, a.triggerMetadata),
      processor.processBatch(b.messages, b.triggerMetadata),
    ]);
    expect([first.roundTrips, second.roundTrips]).toEqual([6, 6]);
    expect(store.roundTrips).toBe(12);
  });

  it('asks for insert-first writes of readings, alerts and dead letters', async () => {
    const calls: { table: string; expectNew: boolean | undefined }[] = [];
    class RecordingStore extends MemoryEntityStore {
      override upsertBatch(
        table: TableName,
        partitionKey: string,
        entities: readonly Entity[],
        options?: UpsertOptions,
      ): Promise<void> {
        calls.push({ table, expectNew: options?.expectNew });
        return super.upsertBatch(table, partitionKey, entities);
      }
      // The processor writes through a scoped view: keep recording on this one.
      override scoped(): MemoryEntityStore {
        return this;
      }
    }
    const { invoke, store } = setup(new RecordingStore());
    // mixedEvents: readings (one above the alert threshold) and dead letters.
    await invoke(sampleBatch(mixedEvents()));
    const tables = new Set(calls.map((c) => c.table));
    expect(tables).toEqual(
      new Set([TableNames.telemetry, TableNames.alerts, TableNames.deadLetters]),
    );
    expect(calls.every((c) => c.expectNew === true)).toBe(true);
    // The state goes by its own conditional write, unaffected.
    expect(
      (await store.queryPartition(TableNames.deviceState, 'sim-0', { limit: 10 })).length,
    ).toBe(1);
  });

  it('reuses the cached device state on the next batch (no read)', async () => {
    const { store, invoke } = setup();
    await invoke(sampleBatch(tutorialEvents({ count: 10, devices: 2, start, windSpeed: () => 1 })));
    const afterFirst = store.roundTrips;
    await invoke(
      sampleBatch(
        tutorialEvents({
          count: 10,
          devices: 2,
          start: new Date(start.getTime() + 1000),
          firstSequenceNumber: 10,
          windSpeed: () => 1,
        }),
      ),
    );
    expect(store.roundTrips - afterFirst).toBe(2 * 2);
  });

  it('throws (so the host retries) when storage is unreachable, and logs no secrets', async () => {
    const { store, logs, invoke } = setup();
    store.failure = () =>
      new RestError('connect ECONNREFUSED 127.0.0.1:1 AccountKey=c2VjcmV0', {
        code: 'ECONNREFUSED',
      });
    await expect(
      invoke(sampleBatch(tutorialEvents({ count: 3, devices: 1, start }))),
    ).rejects.toThrow('ECONNREFUSED');
    const error = logs.find((l) => l.level === 'error');
    expect(error?.text).toContain('the host will retry');
    expect(error?.text).not.toContain('c2VjcmV0');

    store.failure = undefined;
    await invoke(sampleBatch(tutorialEvents({ count: 3, devices: 1, start })));
    expect(store.rows(TableNames.telemetry)).toHaveLength(3);
  });

  it('never throws for invalid events alone', async () => {
    const { store, invoke } = setup();
    const garbage: SampleEvent[] = [
      { sequenceNumber: 1, enqueuedTime: start, deviceId: 'a', body: null },
      { sequenceNumber: 2, enqueuedTime: start, deviceId: 'a', body: Buffer.from([0xff, 0x00]) },
      { sequenceNumber: 3, enqueuedTime: start, deviceId: 'a', body: { nested: { windSpeed: 1 } } },
      {
        sequenceNumber: 4,
        enqueuedTime: start,
        deviceId: 'a',
        body: Buffer.from('x'.repeat(5000)),
      },
    ];
    await invoke(sampleBatch(garbage));
    const letters = store.rows(TableNames.deadLetters);
    expect(letters).toHaveLength(4);
    const long = letters.find((l) => l.bodySize === 5000);
    expect(long).toMatchObject({ bodyTruncated: true });
    expect(String(long?.bodyText)).toHaveLength(64);
    const binary = letters.find((l) => l.bodyBinary !== undefined);
    expect(binary?.bodyBinary).toEqual(new Uint8Array([0xff, 0x00]));
  });
});
