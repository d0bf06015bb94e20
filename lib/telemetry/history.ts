/**
 * A device's alerts and dead letters as the API returns them:
 * `GET /devices/{deviceId}/alerts?from=&to=&limit=` and `GET /devices/{deviceId}/deadletters?limit=`.
 * Both read one partition of the telemetry processor's tables, newest first (the RowKey order).
 */
import { z } from 'zod';
import type { Entity, EntityStore } from '../storage/entity-store';
import { rowKeyRangeForTimes } from '../storage/keys';
import { TableNames } from '../storage/tables';
import { devicePartitionKey } from './entities';
import { apiSchemas, DeviceId, MessageId } from '../http/schemas';

export const maxHistoryLimit = 1000;
export const defaultHistoryLimit = 100;

const limitText = `a whole number from 1 to ${maxHistoryLimit}`;
const limit = z
  .string()
  .regex(/^\d+$/, limitText)
  .transform(Number)
  .pipe(z.int().min(1, limitText).max(maxHistoryLimit, limitText))
  .optional()
  .describe(`Most entries to return (1–${maxHistoryLimit}, default ${defaultHistoryLimit}).`);

const instantText = 'an ISO 8601 date-time with a zone, e.g. 2026-01-31T12:00:00Z';
const instant = z
  .string()
  // An unencoded `+01:00` in a query string arrives as a space.
  .transform((v) => v.trim().replace(/ (\d{2}:\d{2})$/, '+$1'))
  .refine(
    (v) =>
      /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/i.test(v) &&
      Number.isFinite(Date.parse(v)),
    instantText,
  )
  .transform((v) => Date.parse(v));

export const AlertsQuery = z.strictObject({
  from: instant.optional().describe('Oldest enqueue time to include (ISO 8601, inclusive).'),
  to: instant.optional().describe('Newest enqueue time to include (ISO 8601, inclusive).'),
  limit,
});

export const DeadLettersQuery = z.strictObject({ limit });

export const Alert = z.object({
  deviceId: DeviceId,
  windSpeed: z.number(),
  threshold: z.number().describe('The threshold in force when the reading was processed.'),
  enqueuedTime: z.string().describe('When IoT Hub enqueued the reading (ISO 8601, UTC).'),
  messageId: MessageId.optional(),
  correlationId: MessageId.optional(),
  partition: z.string(),
  sequenceNumber: z.string().describe('Sequence number in that partition (decimal text).'),
});
apiSchemas.add(Alert, { id: 'Alert' });

export const AlertList = z.object({
  items: z.array(Alert).describe('Newest first.'),
  threshold: z.number().describe('The alert threshold in force now (TELEMETRY_ALERT_THRESHOLD).'),
});
apiSchemas.add(AlertList, { id: 'AlertList' });

export const DeadLetterItem = z.object({
  deviceId: z.string().optional().describe('The authenticated device, as the event named it.'),
  reason: z.string().describe('Why the event is not a reading (a stable code, e.g. not-json).'),
  detail: z.string(),
  enqueuedTime: z.string().optional(),
  messageId: z.string().optional(),
  correlationId: z.string().optional(),
  partition: z.string(),
  sequenceNumber: z.string().optional(),
  contentType: z.string().optional(),
  bodySize: z.number().describe('The body size in bytes as it arrived.'),
  bodyText: z.string().optional().describe('The (possibly truncated) body when it is UTF-8.'),
  bodyBase64: z.string().optional().describe('The (possibly truncated) body otherwise.'),
  bodyTruncated: z.boolean().optional(),
});
apiSchemas.add(DeadLetterItem, { id: 'DeadLetter' });

export const DeadLetterList = z.object({
  items: z.array(DeadLetterItem).describe('Newest first (events without a position last).'),
});
apiSchemas.add(DeadLetterList, { id: 'DeadLetterList' });

export type Alert = z.infer<typeof Alert>;
export type DeadLetterItem = z.infer<typeof DeadLetterItem>;

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return undefined;
}

/** Copies the optional string columns that are present. */
function pick(entity: Entity, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = text(entity[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export function alertFromEntity(entity: Entity): Alert {
  return {
    deviceId: String(entity.deviceId),
    windSpeed: Number(entity.windSpeed),
    threshold: Number(entity.threshold),
    enqueuedTime: text(entity.enqueuedTime) ?? '',
    partition: String(entity.partition),
    sequenceNumber: String(entity.sequenceNumber),
    ...pick(entity, ['messageId', 'correlationId']),
  };
}

export function deadLetterFromEntity(entity: Entity): DeadLetterItem {
  const item: DeadLetterItem = {
    reason: String(entity.reason),
    detail: String(entity.detail),
    partition: String(entity.partition),
    bodySize: Number(entity.bodySize),
    ...pick(entity, [
      'deviceId',
      'enqueuedTime',
      'messageId',
      'correlationId',
      'sequenceNumber',
      'contentType',
      'bodyText',
    ]),
  };
  if (entity.bodyBinary instanceof Uint8Array) {
    item.bodyBase64 = Buffer.from(entity.bodyBinary).toString('base64');
  }
  if (entity.bodyTruncated === true) item.bodyTruncated = true;
  return item;
}

export async function readAlerts(
  store: EntityStore,
  deviceId: string,
  query: z.output<typeof AlertsQuery>,
): Promise<Alert[]> {
  const rows = await store.queryPartition(TableNames.alerts, devicePartitionKey(deviceId), {
    ...rowKeyRangeForTimes(query.from, query.to),
    limit: query.limit ?? defaultHistoryLimit,
  });
  return rows.map(alertFromEntity);
}

export async function readDeadLetters(
  store: EntityStore,
  deviceId: string,
  query: z.output<typeof DeadLettersQuery>,
): Promise<DeadLetterItem[]> {
  const rows = await store.queryPartition(TableNames.deadLetters, devicePartitionKey(deviceId), {
    limit: query.limit ?? defaultHistoryLimit,
  });
  return rows.map(deadLetterFromEntity);
}
