/**
 * One receiver link reading one partition: sends events only while the link has credit (the
 * SDKs grant it explicitly) and wakes when the partition grows. Pre-settled or not, the endpoint
 * keeps no per-delivery state: like Event Hubs it never redelivers; clients resume by position.
 */
import type { Sender } from 'rhea';
import type { DeviceToCloud } from '../core/contracts';
import { writeEventMessage } from './event-writer';
import type { OwnedReader } from './ownership';

/** Bounds one read from the log, so one busy link cannot hold the event loop for long. */
const maxBatch = 256;

interface DrainableSender {
  credit?: number;
  _draining?: boolean;
}

export interface PartitionReaderOptions {
  d2c: DeviceToCloud;
  partitionId: string;
  /** First sequence number to send. */
  startSequenceNumber: number;
  runtimeMetrics: boolean;
  now: () => number;
  /** Called once when another reader takes the partition; the reader is already stopped. */
  onStolen: (description: string) => void;
}

export class PartitionReader implements OwnedReader {
  private next: number;
  private stopped = false;
  private scheduled = false;

  constructor(
    private readonly sender: Sender,
    private readonly options: PartitionReaderOptions,
  ) {
    this.next = options.startSequenceNumber;
  }

  get partitionId(): string {
    return this.options.partitionId;
  }

  /**
   * Coalesces wake-ups (one per appended event) into one pump after the current batch of
   * commits: a microtask, not the next turn of the event loop, which cost device→consumer p99
   * ~1.7 ms at 2,000 msg/s (four interleaved pairs, issue 14).
   */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  pump(): void {
    if (this.stopped || !this.sender.is_open()) return;
    const { d2c, partitionId } = this.options;
    while (this.sender.sendable()) {
      const credit = (this.sender as unknown as DrainableSender).credit ?? 1;
      const events = d2c.read(partitionId, this.next, Math.max(1, Math.min(credit, maxBatch)));
      if (events.length === 0) break;
      const metrics = this.options.runtimeMetrics
        ? { info: d2c.info(partitionId), now: this.options.now() }
        : undefined;
      for (const event of events) {
        if (!this.sender.sendable()) break;
        // Pre-encoded bytes in the standard message format (0).
        this.sender.send(writeEventMessage(event, metrics), undefined, 0);
        this.next = event.sequenceNumber + 1;
      }
    }
    // A drain request with nothing left to send: give the remaining credit back.
    const state = this.sender as unknown as DrainableSender;
    if (state._draining && (state.credit ?? 0) > 0) this.sender.set_drained(true);
  }

  steal(description: string): void {
    if (this.stopped) return;
    this.stop();
    this.options.onStolen(description);
  }

  stop(): void {
    this.stopped = true;
  }
}
