/**
 * The one persistence interface behind the core. The core keeps its working state in memory and
 * tells the store every change (a journal); the store makes it durable (or not) and, on open,
 * hands back what it recovered. `create-core.ts` chooses the implementation.
 */
import type {
  C2DMessage,
  DeviceRecord,
  FeedbackBatch,
  FeedbackRecord,
  StoredEvent,
  TwinRecord,
} from './contracts';

/** One state change, journaled in the order the core made it. */
export type StateChange =
  | { kind: 'device.put'; device: DeviceRecord }
  /** Also deletes the device's twin. */
  | { kind: 'device.delete'; deviceId: string }
  /** The whole twin after a change (twins are small: at most ~72 KB of properties). */
  | { kind: 'twin.put'; twin: TwinRecord }
  | { kind: 'c2d.enqueue'; message: C2DMessage }
  | { kind: 'c2d.delivered'; deviceId: string; lockToken: string; deliveryCount: number }
  | { kind: 'c2d.remove'; deviceId: string; lockToken: string }
  | { kind: 'feedback.add'; record: FeedbackRecord }
  /** The oldest `count` open records became a batch. */
  | { kind: 'feedback.close'; batchId: string; enqueuedTime: number; count: number }
  | { kind: 'feedback.settle'; batchId: string };

/** Everything a store recovered on open. */
export interface RecoveredState {
  /** In creation order. */
  devices: DeviceRecord[];
  /** Twins that have ever changed (a device without one has a fresh twin). */
  twins: TwinRecord[];
  /** Queued C2D messages of every device, in queue order (none locked). */
  c2dMessages: C2DMessage[];
  /** Closed batches not settled yet, oldest first. */
  feedbackBatches: FeedbackBatch[];
  /** Records not yet in a batch, oldest first. */
  feedbackOpen: FeedbackRecord[];
  /** The next sequence number per partition id (survives retention dropping every event). */
  nextSequenceNumbers: Map<string, number>;
}

export interface StoreStats {
  /** Telemetry log flushes (one write + fsync each) since open. */
  eventFlushes: number;
  /** Telemetry records written since open. */
  eventsWritten: number;
  /** State log flushes since open. */
  stateFlushes: number;
  /** Times the state log was rewritten as a snapshot since open (not counting the one on open). */
  stateCompactions: number;
}

/** A position in a partition: one event's sequence number and enqueued time. */
export interface EventPosition {
  sequenceNumber: number;
  enqueuedTime: number;
}

/**
 * Durable telemetry a store can read back from disk, so the core needs to keep only the newest
 * events in memory. Holds only durable events; reads are synchronous (bounded preads).
 */
export interface EventLog {
  /** Encoded events (`record-codec`) of a partition, sequence number ≥ `from` and time ≥ `minTime`. */
  read(partitionId: string, from: number, minTime: number, max: number): Buffer[];
  /** The partition's first event enqueued at or after `time`, if one is stored. */
  firstAtTime(partitionId: string, time: number): EventPosition | undefined;
  /** The partition's newest stored event, if any. */
  last(partitionId: string): EventPosition | undefined;
}

export interface CoreStore {
  /** True when changes survive a process crash. */
  readonly durable: boolean;
  /** What was recovered when the store opened (empty for a fresh or in-memory store). */
  readonly recovered: RecoveredState;
  /** Telemetry readable from disk (durable store); without it the core keeps all it retains. */
  readonly events?: EventLog;
  /** Journals changes atomically and in call order; resolves once durable. */
  record(changes: readonly StateChange[]): Promise<void>;
  /**
   * Journals one telemetry event, given also encoded (`encodeEvent(event, FRAME_HEADROOM)`: the
   * store may fill in the free bytes in front, never the payload); resolves once durable
   * (concurrent calls share one fsync).
   */
  appendEvent(event: StoredEvent, encoded: Buffer): Promise<void>;
  /** Lets the store discard telemetry older than `time` (ms) from disk. */
  dropEventsBefore(time: number): void;
  stats(): StoreStats;
  /** Flushes and releases files. */
  close(): Promise<void>;
}

export function emptyRecoveredState(): RecoveredState {
  return {
    devices: [],
    twins: [],
    c2dMessages: [],
    feedbackBatches: [],
    feedbackOpen: [],
    nextSequenceNumbers: new Map(),
  };
}
