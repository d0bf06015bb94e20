/**
 * `GET /devices/{deviceId}/telemetry?from=&to=&limit=`: a device's stored readings, newest first
 * (the RowKey order), within an enqueue-time range, plus its latest state.
 */
import { z } from 'zod';
import type { EntityStore } from '../storage/entity-store';
import { rowKeyRangeForTimes } from '../storage/keys';
import { TableNames } from '../storage/tables';
import { deviceIdSchema } from './device-id';
import { devicePartitionKey, itemFromEntity, latestRowKey, type TelemetryItem } from './entities';

export const maxTelemetryLimit = 1000;
export const defaultTelemetryLimit = 100;

const instant = z
  .string()
  .trim()
  // An unencoded `+01:00` in a query string arrives as a space.
  .transform((v) => v.replace(/ (\d{2}:\d{2})$/, '+$1'))
  .refine(
    (v) =>
      /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/i.test(v) &&
      Number.isFinite(Date.parse(v)),
    'an ISO 8601 date or date-time with a zone, e.g. 2026-01-31T12:00:00Z',
  )
  .transform((v) => Date.parse(v));

/** Query parameters (other parameters, such as the function key `code`, are ignored). */
export const TelemetryQuery = z
  .object({
    from: instant.optional().describe('Oldest enqueue time to include (ISO 8601, inclusive).'),
    to: instant.optional().describe('Newest enqueue time to include (ISO 8601, inclusive).'),
    limit: z
      .string()
      .trim()
      .regex(/^\d+$/, `a whole number from 1 to ${maxTelemetryLimit}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(1, `a whole number from 1 to ${maxTelemetryLimit}`)
          .max(maxTelemetryLimit, `a whole number from 1 to ${maxTelemetryLimit}`),
      )
      .optional()
      .describe(
        `Most readings to return (1–${maxTelemetryLimit}, default ${defaultTelemetryLimit}).`,
      ),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, {
    message: 'from must not be later than to',
    path: ['from'],
  });

export const TelemetryDeviceId = deviceIdSchema;

/** One stored reading as the route returns it (for the OpenAPI document and tests). */
export const TelemetryItemSchema = z
  .object({
    windSpeed: z.number(),
    deviceId: z.string().describe('The authenticated device (never the body).'),
    messageId: z.string().optional(),
    correlationId: z.string().optional(),
    enqueuedTime: z.string().describe('When IoT Hub enqueued the message (ISO 8601, UTC).'),
    partition: z.string().describe('Event Hub partition it was read from.'),
    sequenceNumber: z
      .union([z.number().int(), z.string()])
      .describe('Sequence number in that partition (text beyond 2^53).'),
    offset: z.string().optional(),
    properties: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        "The device's custom application properties (names camel-cased by the Functions host).",
      ),
  })
  .catchall(z.number())
  .describe(
    'A reading: windSpeed and any other numeric fields of the body, and where it came from.',
  );

export const TelemetryResponse = z.object({
  items: z.array(TelemetryItemSchema).describe('Newest first.'),
  latest: TelemetryItemSchema.optional().describe("The device's newest reading, if any."),
});

export interface TelemetryReadRequest {
  deviceId: string;
  fromMs?: number | undefined;
  toMs?: number | undefined;
  limit?: number | undefined;
}

export interface TelemetryReadResult {
  items: TelemetryItem[];
  latest?: TelemetryItem;
}

export async function readTelemetry(
  store: EntityStore,
  request: TelemetryReadRequest,
): Promise<TelemetryReadResult> {
  const partitionKey = devicePartitionKey(request.deviceId);
  const [rows, latest] = await Promise.all([
    store.queryPartition(TableNames.telemetry, partitionKey, {
      ...rowKeyRangeForTimes(request.fromMs, request.toMs),
      limit: request.limit ?? defaultTelemetryLimit,
    }),
    store.get(TableNames.deviceState, partitionKey, latestRowKey),
  ]);
  return {
    items: rows.map(itemFromEntity),
    ...(latest ? { latest: itemFromEntity(latest.entity) } : {}),
  };
}
