/**
 * Groups C2D feedback records into batches as IoT Hub does: a batch closes at 64 records, or
 * `batchDelayMs` after its first record. Closed batches wait for the service's feedback receiver
 * and stay pending until it settles them.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, ClockTimer, Feedback, FeedbackBatch, FeedbackRecord } from './contracts';
import { Listeners } from './listeners';
import type { CoreStore, StateChange } from './store';

export const MAX_FEEDBACK_BATCH = 64;

interface PendingBatch {
  batch: FeedbackBatch;
  handedOut: boolean;
}

export class FeedbackBatcher implements Feedback {
  private open: FeedbackRecord[] = [];
  private readonly batches: PendingBatch[] = [];
  private timer: ClockTimer | undefined;
  private readonly available = new Listeners<[]>();

  constructor(
    private readonly clock: Clock,
    private readonly store: CoreStore,
    private readonly batchDelayMs: number,
    recoveredBatches: readonly FeedbackBatch[],
    recoveredOpen: readonly FeedbackRecord[],
  ) {
    for (const batch of recoveredBatches) this.batches.push({ batch, handedOut: false });
    this.open = [...recoveredOpen];
    const closed = this.closeFullBatches();
    if (closed.length > 0) {
      this.store.record(closed).catch((error: unknown) => {
        console.error('journaling recovered feedback batches failed:', error);
      });
    }
    if (this.open.length > 0) this.startTimer();
  }

  /**
   * Adds records; returns the journal entries the caller must write (in the same record as the
   * change that produced them, so the outcome and its feedback are durable together).
   */
  add(records: readonly FeedbackRecord[]): StateChange[] {
    if (records.length === 0) return [];
    const changes: StateChange[] = records.map((record) => ({ kind: 'feedback.add', record }));
    this.open.push(...records);
    changes.push(...this.closeFullBatches());
    if (this.open.length > 0 && !this.timer) this.startTimer();
    return changes;
  }

  take(): FeedbackBatch | undefined {
    const pending = this.batches.find((b) => !b.handedOut);
    if (!pending) return undefined;
    pending.handedOut = true;
    return cloneBatch(pending.batch);
  }

  async settle(batchId: string): Promise<void> {
    const index = this.batches.findIndex((b) => b.batch.batchId === batchId);
    if (index < 0) return;
    this.batches.splice(index, 1);
    await this.store.record([{ kind: 'feedback.settle', batchId }]);
  }

  release(batchId: string): void {
    const pending = this.batches.find((b) => b.batch.batchId === batchId);
    if (!pending || !pending.handedOut) return;
    pending.handedOut = false;
    this.available.emit();
  }

  onAvailable(listener: () => void): () => void {
    return this.available.add(listener);
  }

  /** Records not yet in a batch (for tests and diagnostics). */
  get openCount(): number {
    return this.open.length;
  }

  dispose(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private startTimer(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.open.length === 0) return;
      const change = this.closeBatch(this.open.length);
      // Closing is bookkeeping: if it is lost in a crash the records are simply batched again.
      this.store.record([change]).catch((error: unknown) => {
        console.error('journaling a feedback batch failed:', error);
      });
    }, this.batchDelayMs);
  }

  private closeFullBatches(): StateChange[] {
    const changes: StateChange[] = [];
    while (this.open.length >= MAX_FEEDBACK_BATCH)
      changes.push(this.closeBatch(MAX_FEEDBACK_BATCH));
    if (this.open.length === 0 && this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    return changes;
  }

  private closeBatch(count: number): StateChange {
    const batch: FeedbackBatch = {
      batchId: randomUUID(),
      enqueuedTime: this.clock.now(),
      records: this.open.slice(0, count),
    };
    this.open = this.open.slice(count);
    this.batches.push({ batch, handedOut: false });
    // Deferred so the caller journals the batch before a receiver can take and settle it.
    queueMicrotask(() => this.available.emit());
    return {
      kind: 'feedback.close',
      batchId: batch.batchId,
      enqueuedTime: batch.enqueuedTime,
      count,
    };
  }
}

function cloneBatch(batch: FeedbackBatch): FeedbackBatch {
  return { ...batch, records: batch.records.map((r) => ({ ...r })) };
}
