/**
 * The store's own picture of the journaled state: rebuilt from the log on open, kept current as
 * changes are recorded, and written back out as a compact snapshot when the log grows.
 */
import type {
  C2DMessage,
  DeviceRecord,
  FeedbackBatch,
  FeedbackRecord,
  TwinRecord,
} from './contracts';
import type { StateChange } from './store';

export class ReplayState {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly twins = new Map<string, TwinRecord>();
  /** By lock token; insertion order is queue order. */
  private readonly messages = new Map<string, C2DMessage>();
  private feedbackOpen: FeedbackRecord[] = [];
  private readonly batches = new Map<string, FeedbackBatch>();

  apply(change: StateChange): void {
    switch (change.kind) {
      case 'device.put':
        this.devices.set(change.device.deviceId, change.device);
        break;
      case 'device.delete':
        this.devices.delete(change.deviceId);
        this.twins.delete(change.deviceId);
        for (const [token, message] of this.messages) {
          if (message.deviceId === change.deviceId) this.messages.delete(token);
        }
        break;
      case 'twin.put':
        this.twins.set(change.twin.deviceId, change.twin);
        break;
      case 'c2d.enqueue':
        this.messages.set(change.message.lockToken, change.message);
        break;
      case 'c2d.delivered': {
        const message = this.messages.get(change.lockToken);
        if (message) message.deliveryCount = change.deliveryCount;
        break;
      }
      case 'c2d.remove':
        this.messages.delete(change.lockToken);
        break;
      case 'feedback.add':
        this.feedbackOpen.push(change.record);
        break;
      case 'feedback.close':
        this.batches.set(change.batchId, {
          batchId: change.batchId,
          enqueuedTime: change.enqueuedTime,
          records: this.feedbackOpen.slice(0, change.count),
        });
        this.feedbackOpen = this.feedbackOpen.slice(change.count);
        break;
      case 'feedback.settle':
        this.batches.delete(change.batchId);
        break;
    }
  }

  get devicesList(): DeviceRecord[] {
    return [...this.devices.values()];
  }

  get twinsList(): TwinRecord[] {
    return [...this.twins.values()];
  }

  get c2dMessages(): C2DMessage[] {
    return [...this.messages.values()].map((m) => ({ ...m }));
  }

  get feedbackBatches(): FeedbackBatch[] {
    return [...this.batches.values()];
  }

  get openFeedback(): FeedbackRecord[] {
    return [...this.feedbackOpen];
  }

  /** The shortest change list that rebuilds this state. */
  snapshot(): StateChange[] {
    const changes: StateChange[] = [];
    for (const device of this.devices.values()) changes.push({ kind: 'device.put', device });
    for (const twin of this.twins.values()) changes.push({ kind: 'twin.put', twin });
    for (const message of this.messages.values()) changes.push({ kind: 'c2d.enqueue', message });
    for (const batch of this.batches.values()) {
      for (const record of batch.records) changes.push({ kind: 'feedback.add', record });
      changes.push({
        kind: 'feedback.close',
        batchId: batch.batchId,
        enqueuedTime: batch.enqueuedTime,
        count: batch.records.length,
      });
    }
    for (const record of this.feedbackOpen) changes.push({ kind: 'feedback.add', record });
    return changes;
  }
}
