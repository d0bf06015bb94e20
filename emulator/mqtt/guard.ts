/**
 * Hook and listener bodies of the MQTT adapter run guarded, so that a bug in one drops at most one
 * connection: an exception escaping into aedes or a socket's 'data' event would take the whole
 * process down.
 */
import type { Logger } from '../context';
import { describe } from './device-session';

export function guarded<A extends unknown[]>(
  log: Logger,
  what: string,
  body: (...args: A) => void,
): (...args: A) => void {
  return (...args) => {
    try {
      body(...args);
    } catch (error) {
      log.error(`${what} failed: ${describe(error)}`);
    }
  };
}

/**
 * Work still being written (telemetry appends, C2D settlements) that shutdown waits for. A count,
 * not a set of the promises: telemetry tracks one per message, and a set entry plus a `finally`
 * chain per message was measurable garbage at saturation.
 */
export class PendingWork {
  private count = 0;
  private waiters: Array<() => void> = [];

  private readonly done = (): void => {
    this.count -= 1;
    if (this.count === 0) this.wakeWaiters();
  };

  /** Bound, so it can be handed around as a plain function. */
  readonly track = (work: Promise<void>): void => {
    this.count += 1;
    work.then(this.done, this.done);
  };

  /** Resolves once no tracked work is pending (at once when none is). */
  settled(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
