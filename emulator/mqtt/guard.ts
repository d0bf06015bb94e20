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

/** Work still being written (telemetry appends, C2D settlements) that shutdown waits for. */
export class PendingWork {
  private readonly pending = new Set<Promise<void>>();

  /** Bound, so it can be handed around as a plain function. */
  readonly track = (work: Promise<void>): void => {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  };

  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }
}
