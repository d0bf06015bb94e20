/**
 * Time sources for the core. Production uses the system clock; tests use `FakeClock` and move
 * time forward explicitly, so TTL, lock and batching behaviour is tested without sleeping.
 */
import type { Clock, ClockTimer } from './contracts';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Wall-clock time; timers are unref'd so a pending TTL or batch timer never keeps Node alive. */
export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    // Node fires timers longer than 2^31-1 ms at once; a far expiry is simply re-checked then.
    const handle = setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    handle.unref();
    return { id: handle };
  }

  clearTimeout(timer: ClockTimer): void {
    clearTimeout(timer.id as NodeJS.Timeout);
  }
}

interface FakeTimer {
  id: number;
  due: number;
  callback: () => void;
}

/**
 * A manually driven clock. `advance(ms)` moves time forward and fires every timer that falls due
 * on the way, in due order, with `now()` equal to each timer's due time while it runs (timers a
 * callback schedules inside the window fire too).
 */
export class FakeClock implements Clock {
  private current: number;
  private nextId = 1;
  private timers: FakeTimer[] = [];

  /** Starts at 2024-01-01T00:00:00Z unless told otherwise. */
  constructor(start = Date.UTC(2024, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const timer: FakeTimer = { id: this.nextId++, due: this.current + Math.max(0, ms), callback };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((t) => t.id !== timer.id);
  }

  /** Number of timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const target = this.current + Math.max(0, ms);
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.due);
      next.callback();
    }
    this.current = target;
  }

  /** Jumps to an absolute time (never backwards), firing due timers. */
  advanceTo(time: number): void {
    this.advance(time - this.current);
  }

  private nextDue(limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers) {
      if (t.due <= limit && (!best || t.due < best.due || (t.due === best.due && t.id < best.id))) {
        best = t;
      }
    }
    return best;
  }
}
