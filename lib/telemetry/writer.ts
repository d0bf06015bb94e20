/**
 * Persists one processed batch: readings and alerts as one Table transaction per device (per 100
 * rows), dead letters per device, then each device's latest state. Round trips therefore grow
 * with the number of distinct devices in the batch, not with the number of events.
 *
 * All writes are upserts of entities derived from the events alone, so a replay rewrites the same
 * rows. Any storage failure propagates: the handler throws and the host's retry policy replays
 * the whole batch.
 */
import type { Entity, EntityStore } from '../storage/entity-store';
import { TableNames, type TableName } from '../storage/tables';
import { DeviceStateWriter, newest } from './device-state';
import {
  alertEntity,
  deadLetterEntity,
  devicePartitionKey,
  recordRowKey,
  telemetryEntity,
} from './entities';
import type { DeadLetter, TelemetryRecord } from './model';

export interface WriteSummary {
  /** Distinct readings written (duplicates inside one batch count once). */
  stored: number;
  deadLettered: number;
  alerts: number;
  devices: number;
  stateUpdates: number;
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
    };
    const tasks: (() => Promise<void>)[] = [];
    const upsert = (table: TableName, partitionKey: string, entities: Entity[]) => () =>
      store.upsertBatch(table, partitionKey, entities);

    const byDevice = groupBy(records, (r) => devicePartitionKey(r.deviceId));
    summary.devices = byDevice.size;
    for (const [partitionKey, deviceRecords] of byDevice) {
      const unique = new Map(deviceRecords.map((r) => [recordRowKey(r), r]));
      summary.stored += unique.size;
      const readings = [...unique.values()];
      const alerts = readings.filter((r) => r.reading.windSpeed > this.options.alertThreshold);
      summary.alerts += alerts.length;
      const latest = newest(readings);
      tasks.push(async () => {
        await store.upsertBatch(TableNames.telemetry, partitionKey, readings.map(telemetryEntity));
        // The state may only point at a reading that is stored.
        if (latest && (await this.#state.update(store, latest)) === 'updated')
          summary.stateUpdates += 1;
      });
      if (alerts.length > 0) {
        const threshold = this.options.alertThreshold;
        tasks.push(
          upsert(
            TableNames.alerts,
            partitionKey,
            alerts.map((r) => alertEntity(r, threshold)),
          ),
        );
      }
    }

    const letterEntities = letters.map(deadLetterEntity);
    for (const [partitionKey, entities] of groupBy(letterEntities, (e) => e.partitionKey)) {
      summary.deadLettered += new Set(entities.map((e) => e.rowKey)).size;
      tasks.push(upsert(TableNames.deadLetters, partitionKey, entities));
    }

    await runLimited(tasks, this.options.concurrency ?? 8);
    return summary;
  }
}
