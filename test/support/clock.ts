/**
 * Manual clocks for unit tests of lib/ (which takes its time from a `Clock`, lib/clock.ts): time
 * moves only when the test moves it, and `sleep` advances it instead of waiting.
 */
import type { Clock } from '../../lib/clock';

export class ManualClock implements Clock {
  /** Sleeps so far, and a hook run after each (a test can change the world mid-wait). */
  sleeps = 0;
  slept: number[] = [];
  onSleep: (() => void | Promise<void>) | undefined;

  constructor(public time = Date.parse('2026-01-01T00:00:00Z')) {}

  now(): number {
    return this.time;
  }

  async sleep(ms: number): Promise<void> {
    this.time += ms;
    this.sleeps += 1;
    this.slept.push(ms);
    await this.onSleep?.();
  }
}

/** A clock that reads `now()` from the test (e.g. a variable it changes) and never waits. */
export function clockAt(now: () => number): Clock {
  return { now, sleep: () => Promise.resolve() };
}
