/**
 * Delivery status of cloud-to-device messages, one row per message in the `messagestatus`
 * table: partition = device id, row = message id (both escaped into valid keys by `escapeKey`).
 * The send path writes `enqueued`; the feedback timer overwrites the status with the hub's
 * outcome. The rows live behind the same `EntityStore` as the telemetry tables, so tests run the
 * store on the in-memory implementation and production on Table storage.
 */
import { isoNow, systemClock, type Clock } from '../clock';
import { ApiError } from '../http/problem';
import { describeError } from '../http/redact';
import type { Entity, EntityStore, StoredEntity } from '../storage/entity-store';
import { escapeKey } from '../storage/keys';
import { TableNames } from '../storage/tables';
import type { AckMode, MessageState, MessageStatus } from './schemas';

const table = TableNames.messageStatus;
/** Conditional writes retried before giving up (each loss means another writer got there first). */
const maxWriteAttempts = 5;

/** Storage failures the caller cannot fix are 503s; the log gets a secret-free description. */
export class StorageError extends ApiError {
  constructor(reason: unknown) {
    super('storageUnavailable', 'The message status store did not answer; retry later.', {
      headers: { 'Retry-After': '10' },
    });
    this.name = 'StorageError';
    // Logged by the HTTP edge; the response body only carries the generic detail.
    this.message = `Message status storage failed: ${describeError(reason)}`;
  }
}

const finalStates: ReadonlySet<MessageState> = new Set([
  'delivered',
  'rejected',
  'expired',
  'deliveryCountExceeded',
  'purged',
]);

export function isFinal(state: MessageState): boolean {
  return finalStates.has(state);
}

const states: ReadonlySet<string> = new Set(['enqueued', ...finalStates]);
const acks: ReadonlySet<string> = new Set(['none', 'positive', 'negative', 'full']);

function toStatus(row: Record<string, unknown>): MessageStatus {
  const text = (key: string) => {
    const value = row[key];
    return typeof value === 'string' ? value : undefined;
  };
  const status = text('status');
  const ack = text('ack');
  const enqueuedAt = text('enqueuedAt');
  const description = text('description');
  return {
    messageId: text('messageId') ?? '',
    deviceId: text('deviceId') ?? '',
    status: status && states.has(status) ? (status as MessageState) : 'enqueued',
    ...(ack && acks.has(ack) ? { ack: ack as AckMode } : {}),
    ...(enqueuedAt ? { enqueuedAt } : {}),
    updatedAt: text('updatedAt') ?? enqueuedAt ?? '',
    ...(description ? { description } : {}),
  };
}

export interface FeedbackOutcome {
  deviceId: string;
  messageId: string;
  status: MessageState;
  description?: string;
}

export class MessageStatusStore {
  constructor(
    private readonly store: EntityStore,
    private readonly clock: Clock = systemClock,
  ) {}

  private async run<T>(work: (store: EntityStore) => Promise<T>): Promise<T> {
    try {
      return await work(this.store);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw new StorageError(error);
    }
  }

  /**
   * Record a message the hub accepted. Feedback can overtake this write (it is written right
   * after the send), so an existing row from feedback keeps its outcome; a row from an earlier
   * send that reused the message id is replaced.
   */
  async recordEnqueued(deviceId: string, messageId: string, ack: AckMode): Promise<MessageStatus> {
    const at = isoNow(this.clock);
    const entity: Entity = {
      ...rowKeys(deviceId, messageId),
      status: 'enqueued',
      ack,
      enqueuedAt: at,
      updatedAt: at,
    };
    return this.run((store) =>
      // Usually the row is new: try creating it before reading anything.
      writeWithRetry(store, entity, 'tryCreate', (existing) => {
        if (existing === undefined || typeof existing.enqueuedAt === 'string')
          return { write: entity };
        // Feedback came first: keep its status and time, add what the send knows.
        const { status: _feedbackWins, ...rest } = entity;
        const updatedAt = typeof existing.updatedAt === 'string' ? existing.updatedAt : at;
        return { write: { ...existing, ...rest, updatedAt }, report: { ...existing, ...rest } };
      }),
    );
  }

  /** Apply one feedback outcome; a record for an unknown message creates its row. */
  async recordOutcome(outcome: FeedbackOutcome): Promise<void> {
    const change: Entity = {
      ...rowKeys(outcome.deviceId, outcome.messageId),
      status: outcome.status,
      updatedAt: isoNow(this.clock),
      ...(outcome.description ? { description: outcome.description } : {}),
    };
    await this.run((store) =>
      writeWithRetry(store, change, 'read', (existing) => ({ write: { ...existing, ...change } })),
    );
  }

  async read(deviceId: string, messageId: string): Promise<MessageStatus | undefined> {
    return this.run(async (store) => {
      const stored = await store.get(table, escapeKey(deviceId), escapeKey(messageId));
      return stored ? toStatus(stored.entity) : undefined;
    });
  }

  /** A cheap round trip for the health check: reading a row that does not exist. */
  async probe(): Promise<void> {
    await this.read('health-probe', 'health-probe');
  }
}

function rowKeys(deviceId: string, messageId: string): Entity {
  return { partitionKey: escapeKey(deviceId), rowKey: escapeKey(messageId), deviceId, messageId };
}

/** The row to write, and (when it differs) the status to report for it. */
interface NextRow {
  write: Entity;
  report?: Record<string, unknown>;
}

/**
 * Compute the row's next version from the current one and write it only if nobody wrote in
 * between (create when absent, replace by etag otherwise); on a lost race, read again and decide
 * again. `tryCreate` skips the first read (one round trip when the row is new).
 */
async function writeWithRetry(
  store: EntityStore,
  keys: Entity,
  first: 'tryCreate' | 'read',
  next: (existing: Entity | undefined) => NextRow,
): Promise<MessageStatus> {
  for (let attempt = 1; ; attempt += 1) {
    const current: StoredEntity | undefined =
      attempt === 1 && first === 'tryCreate'
        ? undefined
        : await store.get(table, keys.partitionKey, keys.rowKey);
    const row = next(current?.entity);
    const written = await store.writeIf(table, row.write, current?.etag);
    if (written.ok) return toStatus(row.report ?? row.write);
    if (attempt >= maxWriteAttempts) {
      throw new Error(`the status row kept changing during ${maxWriteAttempts} write attempts`);
    }
  }
}
