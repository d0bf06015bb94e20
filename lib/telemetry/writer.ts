/**
 * Persists one processed batch: readings and alerts as one Table transaction per device (per 100
 * rows), dead letters per device, then each device's latest state. Round trips therefore grow
 * with the number of distinct devices in the batch, not with the number of events.
 *
 * All writes are upserts of entities derived from the events alone, so a replay rewrites the same
 * rows. A row Table storage rejects for good (`lib/storage/failure-class.ts`) is isolated
 * (`isolated-upsert.ts`) and dead-lettered while the device's other rows are stored; only a
 * transient failure propagates, so the handler throws and the host's retry policy replays the
 * whole batch.
 */
import type { Entity, EntityStore } from '../storage/entity-store';
import { classifyStorageFailure } from '../storage/failure-class';
import { TableNames } from '../storage/tables';
import { DeviceStateWriter, newest } from './device-state';
import {
  alertEntity,
  deadLetterEntity,
  devicePartitionKey,
  recordRowKey,
  telemetryEntity,
} from './entities';
import { upsertIsolated } from './isolated-upsert';
import type { DeadLetter, TelemetryRecord } from './model';
import { minimalDeadLetterEntity, rejectedReadingLetter } from './rejections';

/**
 * Readings, alerts and dead letters are new rows except when a batch is replayed: inserted first
 * (cheaper on Azurite), upserted only when one exists (see `UpsertOptions.expectNew`).
 */
const freshRows = { expectNew: true } as const;

export interface WriteSummary {
  /** Distinct readings written (duplicates inside one batch count once). */
  stored: number;
  /** Dead letters written, including readings Table storage rejected. */
  deadLettered: number;
  alerts: number;
  devices: number;
  stateUpdates: number;
  /** Readings (or their alert or state rows) Table storage rejected for good, now dead letters. */
  rejected: DeadLetter[];
}

export interface WriterOptions {
  /** Readings with `windSpeed` above this raise an alert. */
  alertThreshold: number;
  /** Devices written in parallel. */
  concurrency?: number;
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/** Runs the tasks with at most `limit` in flight; waits for all, then rethrows the first error. */
async function runLimited(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next];
      next += 1;
      try {
        await task?.();
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

export class TelemetryWriter {
  readonly #state: DeviceStateWriter;

  /** The device-state cache lives as long as the writer: create one per function instance. */
  constructor(private readonly options: WriterOptions) {
    this.#state = new DeviceStateWriter();
  }

  async write(
    store: EntityStore,
    records: readonly TelemetryRecord[],
    letters: readonly DeadLetter[],
  ): Promise<WriteSummary> {
    const summary: WriteSummary = {
      stored: 0,
      deadLettered: 0,
      alerts: 0,
      devices: 0,
      stateUpdates: 0,
      rejected: [],
    };
    const byDevice = groupBy(records, (r) => devicePartitionKey(r.deviceId));
    summary.devices = byDevice.size;
    const concurrency = this.options.concurrency ?? 8;
    const tasks = [...byDevice].map(
      ([partitionKey, deviceRecords]) =>
        () =>
          this.#writeDevice(store, partitionKey, deviceRecords, summary),
    );
    // The event's own dead letters alongside the readings; wait for both before rethrowing.
    const [readings, early] = await Promise.allSettled([
      runLimited(tasks, concurrency),
      writeDeadLetters(store, letters, concurrency),
    ]);
    if (readings.status === 'rejected') throw readings.reason;
    if (early.status === 'rejected') throw early.reason;
    // Then the readings storage rejected (usually none: no round trip).
    const late = await writeDeadLetters(store, summary.rejected, concurrency);
    summary.deadLettered = early.value + late;
    return summary;
  }

  /** One device: readings, then alerts and state for the readings that were stored. */
  async #writeDevice(
    store: EntityStore,
    partitionKey: string,
    deviceRecords: readonly TelemetryRecord[],
    summary: WriteSummary,
  ): Promise<void> {
    const unique = new Map(deviceRecords.map((r) => [recordRowKey(r), r]));
    const rejections = await upsertIsolated(
      store,
      TableNames.telemetry,
      partitionKey,
      [...unique.values()].map(telemetryEntity),
      freshRows,
    );
    for (const { entity, code } of rejections) {
      const record = unique.get(entity.rowKey);
      unique.delete(entity.rowKey);
      if (record) summary.rejected.push(rejectedReadingLetter(record, TableNames.telemetry, code));
    }
    const readings = [...unique.values()];
    summary.stored += readings.length;
    const threshold = this.options.alertThreshold;
    const alerts = readings.filter((r) => r.reading.windSpeed > threshold);
    const writeAlerts = async (): Promise<void> => {
      const rejectedAlerts = await upsertIsolated(
        store,
        TableNames.alerts,
        partitionKey,
        alerts.map((r) => alertEntity(r, threshold)),
        freshRows,
      );
      summary.alerts += alerts.length - rejectedAlerts.length;
      for (const { entity, code } of rejectedAlerts) {
        const record = unique.get(entity.rowKey);
        if (record) summary.rejected.push(rejectedReadingLetter(record, TableNames.alerts, code));
      }
    };
    // The state may only point at a reading that is stored.
    const latest = newest(readings);
    await Promise.all([
      writeAlerts(),
      latest ? this.#updateState(store, latest, summary) : Promise.resolve(),
    ]);
  }

  async #updateState(
    store: EntityStore,
    latest: TelemetryRecord,
    summary: WriteSummary,
  ): Promise<void> {
    try {
      if ((await this.#state.update(store, latest)) === 'updated') summary.stateUpdates += 1;
    } catch (error) {
      const failure = classifyStorageFailure(error);
      if (failure.kind === 'transient') throw error;
      // The reading itself is stored; only the derived "latest" row could not follow it.
      summary.rejected.push(rejectedReadingLetter(latest, TableNames.deviceState, failure.code));
    }
  }
}

/**
 * Dead letters per partition key, each rejected one replaced by its minimal form. Returns how
 * many distinct dead letters were written. A minimal dead letter that still fails is not a
 * property of the event: that error propagates and the batch is retried.
 */
async function writeDeadLetters(
  store: EntityStore,
  letters: readonly DeadLetter[],
  concurrency: number,
): Promise<number> {
  let written = 0;
  const groups = groupBy(letters.map(deadLetterEntity), (e) => e.partitionKey);
  const tasks = [...groups].map(([partitionKey, entities]) => async () => {
    written += new Set(entities.map((e) => e.rowKey)).size;
    const rejections = await upsertIsolated(
      store,
      TableNames.deadLetters,
      partitionKey,
      entities,
      freshRows,
    );
    if (rejections.length === 0) return;
    const minimal: Entity[] = rejections.map((r) => minimalDeadLetterEntity(r.entity, r.code));
    await store.upsertBatch(TableNames.deadLetters, partitionKey, minimal);
  });
  await runLimited(tasks, concurrency);
  return written;
}
