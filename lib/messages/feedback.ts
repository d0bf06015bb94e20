/**
 * Draining IoT Hub's C2D feedback into the message status rows.
 *
 * IoT Hub sends feedback as batches: one AMQP message whose body is a JSON array of records
 * `{originalMessageId, deviceId, statusCode, description, enqueuedTimeUtc, ...}`. A batch is
 * completed only after every record in it is stored, so a crash replays it rather than losing
 * it (the upserts are idempotent). The receiver link stays attached between timer runs; batches
 * that arrive in between wait, unsettled, in memory for the next run.
 */
import type { MessageState } from './schemas';
import { describeError } from '../http/redact';
import type { FeedbackMessage, FeedbackReceiver, ServiceClient } from '../iothub/clients';
import { withHubTimeout } from '../iothub/errors';
import { systemClock, type Clock } from '../clock';
import type { SharedServiceClient } from './shared-service-client';
import type { FeedbackOutcome, MessageStatusStore } from './status-store';

export const feedbackStates: Readonly<Record<string, MessageState>> = {
  Success: 'delivered',
  Expired: 'expired',
  DeliveryCountExceeded: 'deliveryCountExceeded',
  Rejected: 'rejected',
  Purged: 'purged',
};

export class FeedbackFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeedbackFormatError';
  }
}

export interface ParsedFeedback {
  outcomes: FeedbackOutcome[];
  /** Records without ids or with a status code this version does not know. */
  skipped: number;
}

function bodyText(data: unknown): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  if (typeof data === 'string') return data;
  throw new FeedbackFormatError('feedback body is not bytes or text');
}

/** Parse one feedback batch; throws FeedbackFormatError when it is not a JSON array. */
export function parseFeedback(data: unknown): ParsedFeedback {
  let records: unknown;
  if (Array.isArray(data)) {
    records = data;
  } else {
    try {
      records = JSON.parse(bodyText(data));
    } catch (error) {
      if (error instanceof FeedbackFormatError) throw error;
      throw new FeedbackFormatError('feedback body is not JSON');
    }
  }
  if (!Array.isArray(records)) throw new FeedbackFormatError('feedback body is not a JSON array');
  const outcomes: FeedbackOutcome[] = [];
  let skipped = 0;
  for (const record of records as unknown[]) {
    const r = (typeof record === 'object' && record !== null ? record : {}) as Record<
      string,
      unknown
    >;
    const status = typeof r.statusCode === 'string' ? feedbackStates[r.statusCode] : undefined;
    if (
      !status ||
      typeof r.originalMessageId !== 'string' ||
      r.originalMessageId === '' ||
      typeof r.deviceId !== 'string' ||
      r.deviceId === ''
    ) {
      skipped += 1;
      continue;
    }
    outcomes.push({
      deviceId: r.deviceId,
      messageId: r.originalMessageId,
      status,
      ...(typeof r.description === 'string' && r.description !== ''
        ? { description: r.description }
        : {}),
    });
  }
  return { outcomes, skipped };
}

export interface DrainSummary {
  batches: number;
  records: number;
  skipped: number;
  malformed: number;
}

export interface FeedbackLog {
  warn(text: string): void;
}

const silent: FeedbackLog = { warn: () => undefined };

const receiverTimeoutMs = 15_000;

export class FeedbackDrainer {
  private receiverOf: ServiceClient | undefined;
  /** Identifies the current attachment, so listeners of a replaced one fall silent. */
  private attachment: object | undefined;
  private pending: FeedbackMessage[] = [];
  private wake: (() => void) | undefined;
  /** The current run's log (receiver errors between runs go to the last one). */
  private log: FeedbackLog = silent;

  constructor(
    private readonly client: SharedServiceClient,
    private readonly store: MessageStatusStore,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Store every batch that arrives within `durationMs` (and any buffered since last time). */
  async drain(durationMs: number, log: FeedbackLog): Promise<DrainSummary> {
    this.log = log;
    const deadline = this.clock.now() + durationMs;
    await this.ensureReceiver();
    const summary: DrainSummary = { batches: 0, records: 0, skipped: 0, malformed: 0 };
    for (;;) {
      const message = this.pending.shift() ?? (await this.nextArrival(deadline));
      if (!message) return summary;
      try {
        await this.process(message, summary);
      } catch (error) {
        // Storage failed: keep the batch for the next run and let the timer report the failure.
        this.pending.unshift(message);
        throw error;
      }
    }
  }

  private async process(message: FeedbackMessage, summary: DrainSummary): Promise<void> {
    let parsed: ParsedFeedback;
    try {
      parsed = parseFeedback(message.data);
    } catch (error) {
      summary.malformed += 1;
      this.log.warn(`Rejecting a malformed feedback batch: ${describeError(error)}`);
      await this.settle(() => message.reject());
      return;
    }
    for (const outcome of parsed.outcomes) {
      await this.store.recordOutcome(outcome);
    }
    summary.batches += 1;
    summary.records += parsed.outcomes.length;
    summary.skipped += parsed.skipped;
    await this.settle(() => message.complete());
  }

  /** A settle that fails (lock lost, link gone) only means the hub redelivers; rows are idempotent. */
  private async settle(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.log.warn(`Could not settle a feedback batch: ${describeError(error)}`);
    }
  }

  private nextArrival(deadline: number): Promise<FeedbackMessage | undefined> {
    const left = deadline - this.clock.now();
    if (left <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(undefined);
      }, left);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(this.pending.shift());
      };
    });
  }

  private async ensureReceiver(): Promise<void> {
    const client = await this.client.get();
    if (this.receiverOf === client) return;
    const receiver: FeedbackReceiver = await withHubTimeout(
      'Attaching the feedback receiver',
      receiverTimeoutMs,
      client.getFeedbackReceiver(),
    );
    // Batches buffered from an older connection can no longer be settled: the hub redelivers them.
    this.pending = [];
    const attachment = {};
    this.attachment = attachment;
    this.receiverOf = client;
    receiver.onMessage((message) => {
      if (this.attachment !== attachment) return;
      this.pending.push(message);
      this.wake?.();
    });
    receiver.onError((error) => {
      if (this.attachment !== attachment) return;
      this.log.warn(`Feedback receiver failed: ${describeError(error)}`);
      this.attachment = undefined;
      this.receiverOf = undefined;
    });
  }
}
