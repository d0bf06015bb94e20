/** The in-memory store: the core's own state is all there is; nothing survives the process. */
import type { CoreStore, StoreStats } from './store';
import { emptyRecoveredState } from './store';

export function createMemoryStore(): CoreStore {
  const stats: StoreStats = {
    eventFlushes: 0,
    eventsWritten: 0,
    stateFlushes: 0,
    stateCompactions: 0,
  };
  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new Error('The store is closed');
  };
  return {
    durable: false,
    recovered: emptyRecoveredState(),
    record(): Promise<void> {
      assertOpen();
      stats.stateFlushes++;
      return Promise.resolve();
    },
    appendEvent(): Promise<void> {
      assertOpen();
      stats.eventFlushes++;
      stats.eventsWritten++;
      return Promise.resolve();
    },
    dropEventsBefore(): void {},
    stats: () => ({ ...stats }),
    close(): Promise<void> {
      closed = true;
      return Promise.resolve();
    },
  };
}
