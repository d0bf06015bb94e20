/**
 * How telemetry records, alerts, device state and dead letters are laid out as table entities,
 * and how stored entities are read back for the API.
 *
 * Every entity is derived only from the event (never from processing time), so a replayed batch
 * writes exactly the same rows again. Free-form parts (custom properties, system properties,
 * bodies) are bounded so that no event can exceed Table storage's property and entity limits,
 * which would fail the whole transaction and, through the retry policy, block the partition.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { Entity } from '../storage/entity-store';
import { escapeKey, eventRowKey } from '../storage/keys';
import type { DeadLetter, TelemetryRecord } from './model';

/** Row key of a device's latest state in `devicestate`. */
export const latestRowKey = 'latest';
/** Dead letters whose device is unknown; `escapeKey` never yields a leading `%00`. */
export const unattributedPartitionKey = '%00unattributed';

/** Table storage strings hold at most 32K UTF-16 characters; stay well below. */
const maxJsonChars = 16_000;
const maxDetailChars = 1_000;

export function devicePartitionKey(deviceId: string): string {
  return escapeKey(deviceId.slice(0, 128));
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (
    typeof value === 'object' &&
    value !== null &&
    (value as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((value as { data?: unknown }).data)
  ) {
    return Buffer.from((value as { data: number[] }).data).toString('base64');
  }
  return value;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, jsonReplacer) ?? 'null';
  } catch {
    return '"(unserializable)"';
  }
}

/** Custom properties as JSON, keeping whole entries while they fit. */
function boundedProperties(properties: Record<string, string>): {
  json: string;
  truncated: boolean;
} {
  const kept: Record<string, string> = {};
  let size = 2;
  for (const [name, value] of Object.entries(properties)) {
    const entry = JSON.stringify(name).length + JSON.stringify(value).length + 2;
    if (size + entry > maxJsonChars) return { json: JSON.stringify(kept), truncated: true };
    kept[name] = value;
    size += entry;
  }
  return { json: JSON.stringify(kept), truncated: false };
}

/** At most `max` UTF-16 units, never ending in half a surrogate pair (the service rejects those). */
export function sliceText(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

function optional(entity: Entity, name: string, value: string | undefined): void {
  if (value !== undefined) entity[name] = value;
}

function provenance(entity: Entity, record: TelemetryRecord): void {
  entity.deviceId = record.deviceId;
  optional(entity, 'messageId', record.messageId);
  optional(entity, 'correlationId', record.correlationId);
  entity.enqueuedTime = new Date(record.enqueuedMs);
  entity.partition = record.partition;
  // Int64 does not fit a JS number in general; kept as decimal text.
  entity.sequenceNumber = record.sequenceNumber.toString();
  optional(entity, 'offset', record.offset);
}

/**
 * A reading's row key: its position in the hub (enqueue time, partition, sequence number), so a
 * replay computes the same key. Derived at storage time; it is a storage layout concern.
 */
export function recordRowKey(record: TelemetryRecord): string {
  return eventRowKey(record.enqueuedMs, record.partition, record.sequenceNumber);
}

export function telemetryEntity(record: TelemetryRecord): Entity {
  const entity: Entity = {
    partitionKey: devicePartitionKey(record.deviceId),
    rowKey: recordRowKey(record),
    windSpeed: record.reading.windSpeed,
    reading: JSON.stringify(record.reading),
  };
  provenance(entity, record);
  const properties = boundedProperties(record.properties);
  entity.properties = properties.json;
  if (properties.truncated) entity.propertiesTruncated = true;
  optional(entity, 'contentType', record.contentType);
  optional(entity, 'contentEncoding', record.contentEncoding);
  if (record.base64) entity.base64 = true;
  return entity;
}

export function deviceStateEntity(record: TelemetryRecord): Entity {
  const entity = telemetryEntity(record);
  return { ...entity, rowKey: latestRowKey, telemetryRowKey: entity.rowKey };
}

export function alertEntity(record: TelemetryRecord, threshold: number): Entity {
  const entity: Entity = {
    partitionKey: devicePartitionKey(record.deviceId),
    rowKey: recordRowKey(record),
    windSpeed: record.reading.windSpeed,
    threshold,
  };
  provenance(entity, record);
  return entity;
}

function deadLetterRowKey(letter: DeadLetter): string {
  if (letter.enqueuedMs !== undefined && letter.sequenceNumber !== undefined) {
    return eventRowKey(letter.enqueuedMs, letter.partition, letter.sequenceNumber);
  }
  // No position: a digest of everything known about the event is still stable on replay.
  const digest = createHash('sha256')
    .update(
      safeJson([
        letter.partition,
        letter.offset,
        letter.sequenceNumber?.toString(),
        letter.enqueuedMs,
        letter.bodySize,
        letter.systemProperties,
      ]),
    )
    .update(letter.body)
    .digest('hex');
  return `x_${digest}`;
}

function truncateUtf8(bytes: Buffer): Buffer {
  // The size limit may cut a multi-byte character in half: drop that partial character.
  let i = bytes.byteLength - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 3 && ((bytes[i] ?? 0) & 0xc0) === 0x80) {
    i -= 1;
    continuation += 1;
  }
  if (i < 0) return bytes;
  const lead = bytes[i] ?? 0;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return length > continuation + 1 ? bytes.subarray(0, i) : bytes;
}

export function deadLetterEntity(letter: DeadLetter): Entity {
  const entity: Entity = {
    partitionKey:
      letter.deviceId === undefined
        ? unattributedPartitionKey
        : devicePartitionKey(letter.deviceId),
    rowKey: deadLetterRowKey(letter),
    reason: letter.reason,
    detail: sliceText(letter.detail, maxDetailChars),
    partition: letter.partition,
    bodySize: letter.bodySize,
  };
  // A dead letter must always be storable, whatever the event held: every text is bounded.
  optional(entity, 'deviceId', letter.deviceId && sliceText(letter.deviceId, 256));
  optional(entity, 'messageId', letter.messageId && sliceText(letter.messageId, 256));
  optional(entity, 'correlationId', letter.correlationId && sliceText(letter.correlationId, 256));
  if (letter.enqueuedMs !== undefined) entity.enqueuedTime = new Date(letter.enqueuedMs);
  optional(entity, 'sequenceNumber', letter.sequenceNumber?.toString());
  optional(entity, 'offset', letter.offset && sliceText(letter.offset, 256));
  optional(entity, 'contentType', letter.contentType && sliceText(letter.contentType, 256));
  optional(
    entity,
    'contentEncoding',
    letter.contentEncoding && sliceText(letter.contentEncoding, 256),
  );
  const truncated = letter.body.byteLength < letter.bodySize;
  const textCandidate = truncated ? truncateUtf8(letter.body) : letter.body;
  if (isUtf8(textCandidate)) {
    entity.bodyText = textCandidate.toString('utf8');
  } else if (letter.body.byteLength > 0) {
    // Edm.Binary (base64 on the wire) holds up to 64 KiB, above the largest allowed limit.
    entity.bodyBinary = new Uint8Array(letter.body);
  }
  if (truncated) entity.bodyTruncated = true;
  const system = safeJson(letter.systemProperties);
  entity.systemProperties = sliceText(system, maxJsonChars);
  if (system.length > maxJsonChars) entity.systemPropertiesTruncated = true;
  const properties = boundedProperties(letter.properties);
  entity.properties = properties.json;
  if (properties.truncated) entity.propertiesTruncated = true;
  return entity;
}

/** One reading as the API returns it. */
export interface TelemetryItem {
  [field: string]: unknown;
  deviceId: string;
  messageId?: string;
  correlationId?: string;
  enqueuedTime: string;
  partition: string;
  sequenceNumber: number | string;
  offset?: string;
  properties?: Record<string, string>;
}

function parseObject(text: unknown): Record<string, unknown> {
  if (typeof text !== 'string') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

function sequenceForJson(text: unknown): number | string {
  const value = typeof text === 'string' ? Number(text) : NaN;
  return Number.isSafeInteger(value) ? value : String(text);
}

function isoTime(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'string' ? value : '';
}

/** Reading fields first, then the enrichment (which a reading cannot override). */
export function itemFromEntity(entity: Entity): TelemetryItem {
  const item: TelemetryItem = {
    ...parseObject(entity.reading),
    deviceId: String(entity.deviceId),
    enqueuedTime: isoTime(entity.enqueuedTime),
    partition: String(entity.partition),
    sequenceNumber: sequenceForJson(entity.sequenceNumber),
  };
  if (typeof entity.messageId === 'string') item.messageId = entity.messageId;
  if (typeof entity.correlationId === 'string') item.correlationId = entity.correlationId;
  if (typeof entity.offset === 'string') item.offset = entity.offset;
  const properties = parseObject(entity.properties);
  if (Object.keys(properties).length > 0) item.properties = properties as Record<string, string>;
  return item;
}
