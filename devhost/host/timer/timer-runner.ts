/**
 * Runs one timer function on its schedule. Runs never overlap: a tick that comes while the previous
 * run is still going is skipped, and the next tick is computed after each run. The schedule status
 * (last, next) is kept in the data folder as the host keeps it in storage, so a restart that
 * missed an occurrence runs once at start with `IsPastDue: true`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Schedule } from './schedule';

/** The timer input as the host sends it (PascalCase JSON; the library camel-cases it). */
export interface TimerInfo {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

interface ScheduleStatus {
  last: string;
  next: string;
  lastUpdated: string;
}

/** The host's value for "never" (.NET DateTime.MinValue). */
const never = '0001-01-01T00:00:00';

/** `setTimeout` cannot wait longer than ~24.8 days; longer waits re-check. */
const maxTimeoutMs = 24 * 60 * 60 * 1000;

export interface TimerRunnerOptions {
  name: string;
  schedule: Schedule;
  runOnStartup: boolean;
  /** Keep the schedule status (default true, as `useMonitor`). */
  useMonitor: boolean;
  /** Folder for schedule status files; none means in memory only. */
  statusDir?: string;
  run(info: TimerInfo): Promise<void>;
  onSkip?(scheduledFor: Date): void;
}

export class TimerRunner {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #status: ScheduleStatus | undefined;
  #nextDue: Date | undefined;

  constructor(private readonly options: TimerRunnerOptions) {}

  get nextDue(): Date | undefined {
    return this.#nextDue;
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  #statusFile(): string | undefined {
    if (!this.options.useMonitor || !this.options.statusDir) return undefined;
    return join(this.options.statusDir, `${this.options.name.replace(/[^\w.-]/g, '_')}.json`);
  }

  #loadStatus(): ScheduleStatus | undefined {
    const file = this.#statusFile();
    if (!file || !existsSync(file)) return undefined;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ScheduleStatus>;
      if (
        typeof parsed.last === 'string' &&
        typeof parsed.next === 'string' &&
        typeof parsed.lastUpdated === 'string'
      ) {
        return { last: parsed.last, next: parsed.next, lastUpdated: parsed.lastUpdated };
      }
    } catch {
      // A damaged status file only costs a missed past-due run.
    }
    return undefined;
  }

  #saveStatus(status: ScheduleStatus): void {
    this.#status = status;
    const file = this.#statusFile();
    if (!file) return;
    mkdirSync(this.options.statusDir as string, { recursive: true });
    writeFileSync(file, `${JSON.stringify(status)}\n`);
  }

  start(): void {
    const now = new Date();
    this.#status = this.#loadStatus();
    const missed = this.#status && this.#status.next !== never && new Date(this.#status.next) < now;
    const next = this.options.schedule.next(now);
    this.#saveStatus({
      last: this.#status?.last ?? never,
      next: next?.toISOString() ?? never,
      lastUpdated: now.toISOString(),
    });
    if (missed || this.options.runOnStartup) {
      void this.#tick(now, Boolean(missed));
    } else {
      this.#arm(next);
    }
  }

  /** Runs now, outside the schedule (manual trigger); false if a run is already going. */
  trigger(): boolean {
    if (this.#running || this.#stopped) return false;
    void this.#tick(new Date(), false, false);
    return true;
  }

  #arm(next: Date | undefined): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextDue = next;
    if (this.#stopped || !next) return;
    const wait = Math.max(0, next.getTime() - Date.now());
    if (wait > maxTimeoutMs) {
      this.#timer = setTimeout(() => this.#arm(next), maxTimeoutMs);
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick(next, false);
    }, wait);
  }

  async #tick(scheduledFor: Date, isPastDue: boolean, rearm = true): Promise<void> {
    if (this.#stopped) return;
    if (this.#running) {
      this.options.onSkip?.(scheduledFor);
      if (rearm) this.#arm(this.options.schedule.next(new Date()));
      return;
    }
    const info: TimerInfo = {
      Schedule: { AdjustForDST: this.options.schedule.adjustForDST },
      ScheduleStatus:
        this.options.useMonitor && this.#status
          ? {
              Last: this.#status.last,
              Next: this.#status.next,
              LastUpdated: this.#status.lastUpdated,
            }
          : null,
      IsPastDue: isPastDue,
    };
    const run = this.options.run(info).catch(() => undefined);
    this.#running = run;
    try {
      await run;
    } finally {
      this.#running = undefined;
    }
    const now = new Date();
    const next = this.options.schedule.next(now);
    this.#saveStatus({
      last: scheduledFor.toISOString(),
      next: next?.toISOString() ?? never,
      lastUpdated: now.toISOString(),
    });
    if (rearm || !this.#timer) this.#arm(next);
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
