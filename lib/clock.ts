/**
 * The one notion of time in lib/: epoch milliseconds and a wait. Every class that reads the time
 * or waits takes a `Clock` (default `systemClock`), so tests pass a manual clock
 * (`test/support/clock.ts`) and advance it instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` of this clock's time. */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The clock's time as an ISO 8601 timestamp (what the tables and API bodies carry). */
export function isoNow(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}
