/**
 * Per-device cloud-to-device queues with IoT Hub's semantics: bounded depth, TTL, lock on
 * delivery, a maximum delivery count, and feedback records for the outcomes the ack mode asks for.
 */
import { randomUUID } from 'node:crypto';
import type {
  AckMode,
  C2DMessage,
  C2DMessageInput,
  Clock,
  ClockTimer,
  CloudToDevice,
  DeviceRecord,
  FeedbackRecord,
  FeedbackStatusCode,
} from './contracts';
import { HubError } from './contracts';
import type { FeedbackBatcher } from './feedback-batcher';
import { Listeners } from './listeners';
import type { CoreStore, StateChange } from './store';

/**
 * IoT Hub's limit on a cloud-to-device message: the body, the values of the system properties
 * and the names and values of the application properties together.
 */
export const MAX_C2D_MESSAGE_BYTES = 64 * 1024;

/** IoT Hub allows only these characters in C2D property names and values. */
const PROPERTY_TEXT = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]*$/;

const DESCRIPTIONS: Record<FeedbackStatusCode, string> = {
  Success: 'Success',
  Expired: 'Message Expired',
  DeliveryCountExceeded: 'Message delivery count exceeded',
  Rejected: 'Message rejected',
  Purged: 'Message purged',
};

const ACK_MODES: readonly AckMode[] = ['none', 'positive', 'negative', 'full'];

interface QueueEntry {
  message: C2DMessage;
  locked: boolean;
  /**
   * The lock token of the current delivery while locked: new on every delivery, so a device that
   * lost its lock cannot settle a later delivery of the same message. (`message.lockToken` stays
   * the message's key in the journal.)
   */
  lock?: string;
  /** False until the enqueue is durable: not delivered before the sender heard success. */
  ready: boolean;
  /** Ends a timed lock (HTTPS polling); absent for locks held by a connection (MQTT). */
  lockTimer?: ClockTimer;
}

export interface C2DQueueOptions {
  clock: Clock;
  store: CoreStore;
  feedback: FeedbackBatcher;
  device(deviceId: string): DeviceRecord | undefined;
  defaultTtlMs: number;
  maxQueueDepth: number;
  maxDeliveryCount: number;
}

function wantsFeedback(ack: AckMode, status: FeedbackStatusCode): boolean {
  switch (ack) {
    case 'full':
      return true;
    case 'positive':
      return status === 'Success';
    case 'negative':
      return status !== 'Success';
    default:
      return false;
  }
}

/** IoT Hub refuses C2D properties outside its token characters (its docs on message format). */
function checkProperties(properties: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(properties)) {
    if (name === '' || !PROPERTY_TEXT.test(name) || !PROPERTY_TEXT.test(value)) {
      throw new HubError(
        'ArgumentInvalid',
        `Property ${JSON.stringify(name.slice(0, 128))}: names and values may hold only ASCII letters, digits and !#$%&'*+-.^_\`|~`,
      );
    }
  }
}

/** The size IoT Hub counts against the limit. */
function messageBytes(message: C2DMessage): number {
  let total = message.body.length;
  const system = [
    message.messageId,
    message.correlationId,
    message.userId,
    message.to,
    message.contentType,
    message.contentEncoding,
  ];
  for (const value of system) if (value !== undefined) total += Buffer.byteLength(value, 'utf8');
  for (const [name, value] of Object.entries(message.properties)) {
    total += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

function copyMessage(message: C2DMessage): C2DMessage {
  return { ...message, properties: { ...message.properties } };
}

export class C2DQueues implements CloudToDevice {
  readonly maxQueueDepth: number;
  readonly maxDeliveryCount: number;
  private readonly queues = new Map<string, QueueEntry[]>();
  private readonly available = new Listeners<[string]>();
  private expiryTimer: ClockTimer | undefined;
  private expiryTimerDue = Infinity;

  constructor(
    private readonly options: C2DQueueOptions,
    recovered: readonly C2DMessage[],
  ) {
    this.maxQueueDepth = options.maxQueueDepth;
    this.maxDeliveryCount = options.maxDeliveryCount;
    const exhausted: QueueEntry[] = [];
    for (const message of recovered) {
      const entry: QueueEntry = { message: copyMessage(message), locked: false, ready: true };
      this.queueOf(message.deviceId).push(entry);
      // A message locked for its last allowed delivery when the process died counts as exhausted.
      if (message.deliveryCount >= this.maxDeliveryCount) exhausted.push(entry);
    }
    for (const entry of exhausted) {
      this.journalInBackground(
        this.remove(entry.message.deviceId, [entry], 'DeliveryCountExceeded'),
      );
    }
    this.scheduleExpiry();
  }

  async enqueue(deviceId: string, input: C2DMessageInput): Promise<C2DMessage> {
    if (!this.options.device(deviceId)) {
      throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    }
    if (!ACK_MODES.includes(input.ack)) {
      throw new HubError(
        'ArgumentInvalid',
        'The ack mode must be none, positive, negative or full',
      );
    }
    checkProperties(input.properties);
    const message = this.newMessage(deviceId, input);
    const size = messageBytes(message);
    if (size > MAX_C2D_MESSAGE_BYTES) {
      throw new HubError(
        'MessageTooLarge',
        `Cloud-to-device messages are limited to ${MAX_C2D_MESSAGE_BYTES} bytes (body, system property values, property names and values); this one has ${size}`,
      );
    }
    const queue = this.queueOf(deviceId);
    this.sweepExpired(deviceId);
    if (queue.length >= this.maxQueueDepth) {
      throw new HubError(
        'DeviceMaximumQueueDepthExceeded',
        `The queue of device ${deviceId} already holds ${this.maxQueueDepth} messages`,
      );
    }
    const entry: QueueEntry = { message, locked: false, ready: false };
    // Counted against the depth at once so concurrent sends cannot overfill the queue.
    queue.push(entry);
    try {
      await this.options.store.record([{ kind: 'c2d.enqueue', message: copyMessage(message) }]);
    } catch (error) {
      this.detach(deviceId, entry);
      throw error;
    }
    if (this.queues.get(deviceId)?.includes(entry)) {
      entry.ready = true;
      this.scheduleExpiry(message.expiryTime);
      this.available.emit(deviceId);
    }
    return copyMessage(message);
  }

  private newMessage(deviceId: string, input: C2DMessageInput): C2DMessage {
    const now = this.options.clock.now();
    return {
      messageId: input.messageId ?? randomUUID(),
      ...(input.correlationId !== undefined && { correlationId: input.correlationId }),
      ...(input.userId !== undefined && { userId: input.userId }),
      ...(input.contentType !== undefined && { contentType: input.contentType }),
      ...(input.contentEncoding !== undefined && { contentEncoding: input.contentEncoding }),
      ack: input.ack,
      properties: { ...input.properties },
      body: input.body,
      deviceId,
      lockToken: randomUUID(),
      enqueuedTime: now,
      expiryTime: input.expiryTime ?? now + this.options.defaultTtlMs,
      deliveryCount: 0,
      to: `/devices/${deviceId}/messages/devicebound`,
    };
  }

  lockNext(deviceId: string, lockTimeoutMs?: number): C2DMessage | undefined {
    this.sweepExpired(deviceId);
    const entry = this.queues.get(deviceId)?.find((e) => e.ready && !e.locked);
    if (!entry) return undefined;
    entry.locked = true;
    entry.lock = randomUUID();
    entry.message.deliveryCount++;
    if (lockTimeoutMs !== undefined) this.startLockTimer(deviceId, entry, lockTimeoutMs);
    // The count only matters after a crash (to stop redelivering forever); not worth a wait.
    this.journalInBackground([
      {
        kind: 'c2d.delivered',
        deviceId,
        lockToken: entry.message.lockToken,
        deliveryCount: entry.message.deliveryCount,
      },
    ]);
    return { ...copyMessage(entry.message), lockToken: entry.lock };
  }

  async complete(deviceId: string, lockToken: string): Promise<void> {
    const entry = this.lockedEntry(deviceId, lockToken);
    await this.options.store.record(this.remove(deviceId, [entry], 'Success'));
  }

  async abandon(deviceId: string, lockToken: string): Promise<void> {
    await this.unlock(deviceId, this.lockedEntry(deviceId, lockToken));
  }

  /** Back to the queue, unless that was its last delivery or it expired meanwhile. */
  private async unlock(deviceId: string, entry: QueueEntry): Promise<void> {
    this.stopLockTimer(entry);
    entry.locked = false;
    entry.lock = undefined;
    if (entry.message.deliveryCount >= this.maxDeliveryCount) {
      await this.options.store.record(this.remove(deviceId, [entry], 'DeliveryCountExceeded'));
      return;
    }
    if (entry.message.expiryTime <= this.options.clock.now()) {
      await this.options.store.record(this.remove(deviceId, [entry], 'Expired'));
      return;
    }
    this.scheduleExpiry(entry.message.expiryTime);
    this.available.emit(deviceId);
  }

  async deadLetter(deviceId: string, lockToken: string, description: string): Promise<void> {
    const entry = this.lockedEntry(deviceId, lockToken);
    await this.options.store.record(
      this.remove(deviceId, [entry], 'DeliveryCountExceeded', undefined, description),
    );
  }

  async reject(deviceId: string, lockToken: string): Promise<void> {
    const entry = this.lockedEntry(deviceId, lockToken);
    await this.options.store.record(this.remove(deviceId, [entry], 'Rejected'));
  }

  async purge(deviceId: string): Promise<number> {
    const device = this.options.device(deviceId);
    if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    const count = this.queues.get(deviceId)?.length ?? 0;
    const changes = this.purgeQueue(deviceId, device.generationId);
    if (changes.length > 0) await this.options.store.record(changes);
    return count;
  }

  /**
   * Empties a queue now (with `Purged` feedback where asked) and returns the journal entries; the
   * registry writes them together with the device's deletion.
   */
  purgeQueue(deviceId: string, generationId: string): StateChange[] {
    const entries = [...(this.queues.get(deviceId) ?? [])];
    this.queues.delete(deviceId);
    return entries.length === 0 ? [] : this.remove(deviceId, entries, 'Purged', generationId);
  }

  depth(deviceId: string): number {
    this.sweepExpired(deviceId);
    return this.queues.get(deviceId)?.length ?? 0;
  }

  onAvailable(listener: (deviceId: string) => void): () => void {
    return this.available.add(listener);
  }

  dispose(): void {
    for (const queue of this.queues.values()) for (const entry of queue) this.stopLockTimer(entry);
    if (this.expiryTimer) this.options.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryTimerDue = Infinity;
  }

  private queueOf(deviceId: string): QueueEntry[] {
    let queue = this.queues.get(deviceId);
    if (!queue) {
      queue = [];
      this.queues.set(deviceId, queue);
    }
    return queue;
  }

  private lockedEntry(deviceId: string, lockToken: string): QueueEntry {
    const entry = this.queues.get(deviceId)?.find((e) => e.locked && e.lock === lockToken);
    if (entry) return entry;
    if (!this.options.device(deviceId)) {
      throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    }
    throw new HubError('PreconditionFailed', 'The message lock was lost or the message is gone');
  }

  /**
   * A timed lock that is neither completed, rejected nor abandoned in time ends as an abandon does
   * (IoT Hub: the message becomes visible again; the delivery still counts).
   */
  private startLockTimer(deviceId: string, entry: QueueEntry, ms: number): void {
    this.stopLockTimer(entry);
    entry.lockTimer = this.options.clock.setTimeout(() => {
      entry.lockTimer = undefined;
      if (!entry.locked || !this.queues.get(deviceId)?.includes(entry)) return;
      this.unlock(deviceId, entry).catch((error: unknown) => {
        console.error('ending an expired C2D lock failed:', error);
      });
    }, ms);
  }

  private stopLockTimer(entry: QueueEntry): void {
    if (entry.lockTimer) this.options.clock.clearTimeout(entry.lockTimer);
    entry.lockTimer = undefined;
  }

  private detach(deviceId: string, entry: QueueEntry): void {
    this.stopLockTimer(entry);
    const queue = this.queues.get(deviceId);
    if (!queue) return;
    const index = queue.indexOf(entry);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(deviceId);
  }

  /** Takes entries out of the queue now; returns the journal entries (removal plus feedback). */
  private remove(
    deviceId: string,
    entries: readonly QueueEntry[],
    status: FeedbackStatusCode,
    generationId?: string,
    description: string = DESCRIPTIONS[status],
  ): StateChange[] {
    const generation = generationId ?? this.options.device(deviceId)?.generationId ?? '';
    const changes: StateChange[] = [];
    const records: FeedbackRecord[] = [];
    const enqueuedTimeUtc = new Date(this.options.clock.now()).toISOString();
    for (const entry of entries) {
      this.detach(deviceId, entry);
      changes.push({ kind: 'c2d.remove', deviceId, lockToken: entry.message.lockToken });
      if (wantsFeedback(entry.message.ack, status)) {
        records.push({
          originalMessageId: entry.message.messageId,
          deviceId,
          deviceGenerationId: generation,
          enqueuedTimeUtc,
          statusCode: status,
          description,
        });
      }
    }
    changes.push(...this.options.feedback.add(records));
    return changes;
  }

  /** Removes the device's expired, unlocked messages with `Expired` feedback. */
  private sweepExpired(deviceId: string): void {
    const queue = this.queues.get(deviceId);
    if (!queue) return;
    const now = this.options.clock.now();
    const expired = queue.filter((e) => e.ready && !e.locked && e.message.expiryTime <= now);
    if (expired.length > 0) this.journalInBackground(this.remove(deviceId, expired, 'Expired'));
  }

  /** Keeps one clock timer at the earliest expiry, so offline devices' messages expire too. */
  private scheduleExpiry(candidate?: number): void {
    let due = candidate;
    if (due === undefined) {
      due = Infinity;
      for (const queue of this.queues.values()) {
        for (const e of queue) if (e.ready && !e.locked) due = Math.min(due, e.message.expiryTime);
      }
      if (this.expiryTimer) this.options.clock.clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
      this.expiryTimerDue = Infinity;
    }
    if (due === Infinity || due >= this.expiryTimerDue) return;
    if (this.expiryTimer) this.options.clock.clearTimeout(this.expiryTimer);
    this.expiryTimerDue = due;
    this.expiryTimer = this.options.clock.setTimeout(() => {
      this.expiryTimer = undefined;
      this.expiryTimerDue = Infinity;
      for (const deviceId of [...this.queues.keys()]) this.sweepExpired(deviceId);
      this.scheduleExpiry();
    }, due - this.options.clock.now());
  }

  private journalInBackground(changes: StateChange[]): void {
    if (changes.length === 0) return;
    this.options.store.record(changes).catch((error: unknown) => {
      console.error('journaling a C2D change failed:', error);
    });
  }
}
