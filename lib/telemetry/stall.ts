/**
 * Whether the telemetry pipeline is stuck: the trigger records each failed and each stored batch
 * per Event Hub partition, and `/api/health` asks for a report. With `maxRetryCount: -1` the host
 * retries the same batch until it succeeds, so "failing since" is how long a partition has been
 * stalled.
 *
 * One instance per process (`telemetryStall`): the trigger and the health function are loaded by
 * the same worker. The report carries only the failure's class, never event data.
 */
import { systemClock, type Clock } from '../clock';
import type { TransientReason } from '../storage/failure-class';

/** Why a batch failed: a transient class, or `rejected` (storage refused even a minimal row). */
export type StallReason = TransientReason | 'rejected';

export interface PipelineState {
  status: 'ok' | 'degraded';
  /** The failure class (e.g. `throttled`, `unreachable`) when degraded. */
  reason?: StallReason;
  /** One line for people: which partition, how long, how many attempts. */
  detail?: string;
}

interface Failing {
  sinceMs: number;
  attempts: number;
  reason: StallReason;
  thresholdMs: number;
}

export class StallMonitor {
  readonly #failing = new Map<string, Failing>();

  constructor(private readonly clock: Clock = systemClock) {}

  /**
   * A batch of `partition` failed. Returns how long the partition has been failing (ms) and
   * whether that is past `thresholdMs`, for the log.
   */
  failed(
    partition: string,
    reason: StallReason,
    thresholdMs: number,
  ): { stalledMs: number; stalled: boolean } {
    const now = this.clock.now();
    const previous = this.#failing.get(partition);
    const entry: Failing = {
      sinceMs: previous?.sinceMs ?? now,
      attempts: (previous?.attempts ?? 0) + 1,
      reason,
      thresholdMs,
    };
    this.#failing.set(partition, entry);
    const stalledMs = now - entry.sinceMs;
    return { stalledMs, stalled: stalledMs >= thresholdMs };
  }

  /** A batch of `partition` was stored: the partition moves again. */
  succeeded(partition: string): void {
    this.#failing.delete(partition);
  }

  /** `degraded` while some partition has been failing for longer than its threshold. */
  report(): PipelineState {
    const now = this.clock.now();
    let worst: [string, Failing] | undefined;
    for (const entry of this.#failing) {
      const [, failing] = entry;
      if (now - failing.sinceMs < failing.thresholdMs) continue;
      if (worst === undefined || failing.sinceMs < worst[1].sinceMs) worst = entry;
    }
    if (worst === undefined) return { status: 'ok' };
    const [partition, failing] = worst;
    const seconds = Math.round((now - failing.sinceMs) / 1000);
    return {
      status: 'degraded',
      reason: failing.reason,
      detail: `partition ${partition}: the same batch has failed ${failing.attempts} times over ${seconds} s (${failing.reason}); the host keeps retrying it`,
    };
  }
}
