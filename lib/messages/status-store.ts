/**
 * Delivery status of cloud-to-device messages, one row per message in the `messagestatus`
 * table: partition = device id, row = message id (both escaped into valid keys). The send path
 * writes `enqueued`; the feedback timer overwrites the status with the hub's outcome.
 */
import type { TableClient } from '@azure/data-tables';
import type { AckMode, MessageState, MessageStatus } from './schemas';
import { isoNow, systemClock, type Clock } from '../clock';
import { ApiError } from '../http/problem';
import { describeError } from '../http/redact';

/** The table operations the store needs (a subset of `@azure/data-tables`' `TableClient`). */
export interface StatusTable {
  getEntity(partitionKey: string, rowKey: string): Promise<Record<string, unknown>>;
  createEntity(entity: StatusEntity): Promise<unknown>;
  upsertEntity(entity: StatusEntity, mode: 'Merge' | 'Replace'): Promise<unknown>;
}

export interface StatusEntity {
  partitionKey: string;
  rowKey: string;
  deviceId: string;
  messageId: string;
  status?: MessageState;
  ack?: AckMode;
  enqueuedAt?: string;
  updatedAt: string;
  description?: string;
}

export function adaptTableClient(client: TableClient): StatusTable {
  return {
    getEntity: (partitionKey, rowKey) => client.getEntity(partitionKey, rowKey),
    createEntity: (entity) => client.createEntity(entity),
    upsertEntity: (entity, mode) => client.upsertEntity(entity, mode),
  };
}

/**
 * Table keys may not contain `/ \ # ?` or control characters, all of which (but `/`, `\`)
 * IoT Hub ids allow; percent-escape them (and `%` itself, so the escaping is reversible).
 */
export function tableKey(value: string): string {
  return value.replace(
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must go
    /[%/\\#?\u0000-\u001f\u007f-\u009f]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

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
    private readonly table: () => Promise<StatusTable>,
    private readonly clock: Clock = systemClock,
  ) {}

  private async run<T>(work: (table: StatusTable) => Promise<T>): Promise<T> {
    try {
      return await work(await this.table());
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
    const entity: StatusEntity = {
      partitionKey: tableKey(deviceId),
      rowKey: tableKey(messageId),
      deviceId,
      messageId,
      status: 'enqueued',
      ack,
      enqueuedAt: at,
      updatedAt: at,
    };
    return this.run(async (table) => {
      try {
        await table.createEntity(entity);
        return toStatus({ ...entity });
      } catch (error) {
        if (statusCode(error) !== 409) throw error;
      }
      const existing = await table.getEntity(entity.partitionKey, entity.rowKey);
      if (typeof existing.enqueuedAt === 'string') {
        await table.upsertEntity(entity, 'Replace');
        return toStatus({ ...entity });
      }
      const { status: _feedbackWins, ...rest } = entity;
      const updatedAt = typeof existing.updatedAt === 'string' ? existing.updatedAt : at;
      await table.upsertEntity({ ...rest, updatedAt }, 'Merge');
      return toStatus({ ...existing, ...rest });
    });
  }

  /** Apply one feedback outcome; a record for an unknown message creates its row. */
  async recordOutcome(outcome: FeedbackOutcome): Promise<void> {
    const entity: StatusEntity = {
      partitionKey: tableKey(outcome.deviceId),
      rowKey: tableKey(outcome.messageId),
      deviceId: outcome.deviceId,
      messageId: outcome.messageId,
      status: outcome.status,
      updatedAt: isoNow(this.clock),
      ...(outcome.description ? { description: outcome.description } : {}),
    };
    await this.run((table) => table.upsertEntity(entity, 'Merge'));
  }

  async read(deviceId: string, messageId: string): Promise<MessageStatus | undefined> {
    return this.run(async (table) => {
      try {
        return toStatus(await table.getEntity(tableKey(deviceId), tableKey(messageId)));
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    });
  }

  /** A cheap round trip for the health check: reading a row that does not exist. */
  async probe(): Promise<void> {
    await this.read('health-probe', 'health-probe');
  }
}
