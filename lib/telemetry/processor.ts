/**
 * The Event Hub trigger's work for one batch: decode, validate and enrich every event
 * (`prepareBatch`, pure), persist readings, alerts, state and dead letters (`TelemetryWriter`),
 * and summarise the batch for the log.
 */
import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../clock';
import type { EntityStore } from '../storage/entity-store';
import { TableEntityStore } from '../storage/table-entity-store';
import type { Settings } from '../settings';
import { BatchMetadata } from './event-metadata';
import type { DeadLetter, TelemetryRecord } from './model';
import { processEvent, type ProcessLimits } from './process-event';
import { TelemetryWriter } from './writer';

export const defaultStallThresholdMs = 60_000;

export interface PreparedBatch {
  records: TelemetryRecord[];
  letters: DeadLetter[];
  /** Largest delay from enqueue to processing (ms), undefined when no event had a time. */
  maxLagMs: number | undefined;
}

/** The trigger's `messages`: an array for cardinality `many`, tolerated as a single event too. */
export function eventsOf(messages: unknown): readonly unknown[] {
  return Array.isArray(messages) ? messages : [messages];
}

export function prepareBatch(
  messages: unknown,
  triggerMetadata: unknown,
  limits: ProcessLimits,
  nowMs: number,
): PreparedBatch {
  const events = eventsOf(messages);
  const metadata = new BatchMetadata(triggerMetadata, events.length);
  const records: TelemetryRecord[] = [];
  const letters: DeadLetter[] = [];
  let maxLagMs: number | undefined;
  for (let i = 0; i < events.length; i += 1) {
    const meta = metadata.forEvent(i);
    if (meta.enqueuedMs !== undefined) {
      const lag = Math.max(0, nowMs - meta.enqueuedMs);
      if (maxLagMs === undefined || lag > maxLagMs) maxLagMs = lag;
    }
    const result = processEvent(events[i], meta, limits);
    if (result.kind === 'reading') records.push(result.record);
    else letters.push(result.letter);
  }
  return { records, letters, maxLagMs };
}

export interface BatchSummary {
  events: number;
  stored: number;
  deadLettered: number;
  alerts: number;
  devices: number;
  stateUpdates: number;
  maxLagMs: number | undefined;
  roundTrips: number;
  /** Wall time of the batch's storage writes (ms): with `roundTrips`, where a slow batch went. */
  writeMs: number;
  /** Dead letters per reason, for the log. */
  reasons: Record<string, number>;
}

export interface TelemetryProcessorOptions {
  alertThreshold: number;
  deadLetterMaxBodyBytes: number;
  /** How long a partition may fail before health reports telemetry degraded (default 60 s). */
  stallThresholdMs?: number;
  /** The clock of the lag figure (tests pass a manual one). */
  clock?: Clock;
}

export class TelemetryProcessor {
  readonly #writer: TelemetryWriter;
  readonly #clock: Clock;

  constructor(
    readonly store: EntityStore,
    private readonly options: TelemetryProcessorOptions,
  ) {
    this.#writer = new TelemetryWriter({ alertThreshold: options.alertThreshold });
    this.#clock = options.clock ?? systemClock;
  }

  static fromSettings(
    settings: Settings,
    clock: Clock = systemClock,
    store: EntityStore = TableEntityStore.fromSettings(settings.storage),
  ): TelemetryProcessor {
    return new TelemetryProcessor(store, {
      alertThreshold: settings.telemetry.alertThreshold,
      deadLetterMaxBodyBytes: settings.telemetry.deadLetterMaxBodyBytes,
      stallThresholdMs: settings.telemetry.stallSeconds * 1000,
      clock,
    });
  }

  get stallThresholdMs(): number {
    return this.options.stallThresholdMs ?? defaultStallThresholdMs;
  }

  async processBatch(messages: unknown, triggerMetadata: unknown): Promise<BatchSummary> {
    // A view with its own counter: batches of other partitions may be running concurrently.
    const store = this.store.scoped();
    const batch = prepareBatch(
      messages,
      triggerMetadata,
      { deadLetterMaxBodyBytes: this.options.deadLetterMaxBodyBytes },
      this.#clock.now(),
    );
    const started = performance.now();
    const { rejected, ...written } = await this.#writer.write(store, batch.records, batch.letters);
    const writeMs = Math.round(performance.now() - started);
    const reasons: Record<string, number> = {};
    for (const letter of [...batch.letters, ...rejected]) {
      reasons[letter.reason] = (reasons[letter.reason] ?? 0) + 1;
    }
    return {
      events: batch.records.length + batch.letters.length,
      ...written,
      maxLagMs: batch.maxLagMs,
      roundTrips: store.roundTrips,
      writeMs,
      reasons,
    };
  }
}

/** One log line per batch: counts only — no bodies, ids or secrets. */
export function formatSummary(summary: BatchSummary): string {
  const reasons = Object.entries(summary.reasons)
    .map(([reason, count]) => `${reason}:${count}`)
    .join(',');
  return [
    'telemetry batch',
    `events=${summary.events}`,
    `stored=${summary.stored}`,
    `deadLettered=${summary.deadLettered}${reasons ? ` (${reasons})` : ''}`,
    `alerts=${summary.alerts}`,
    `devices=${summary.devices}`,
    `stateUpdates=${summary.stateUpdates}`,
    `maxLagMs=${summary.maxLagMs ?? 'n/a'}`,
    `roundTrips=${summary.roundTrips}`,
    `writeMs=${summary.writeMs}`,
  ].join(' ');
}
