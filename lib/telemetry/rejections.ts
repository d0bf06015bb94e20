/**
 * Dead letters for what Table storage rejected for good, and the last-resort form of a dead letter.
 *
 * A rejected reading becomes a `storage-rejected` dead letter whose body is the validated reading
 * (the raw body is not kept past decoding). If even a dead letter is rejected, its minimal form
 * — keys, reason, a short detail and the event's position, all short ASCII or numbers — is
 * stored instead; that form is always storable, so if it fails too the cause is the
 * infrastructure and the batch is retried.
 */
import type { Entity } from '../storage/entity-store';
import type { TableName } from '../storage/tables';
import type { DeadLetter, TelemetryRecord } from './model';

export function rejectedReadingLetter(
  record: TelemetryRecord,
  table: TableName,
  code: string,
): DeadLetter {
  const body = Buffer.from(JSON.stringify(record.reading), 'utf8');
  return {
    reason: 'storage-rejected',
    detail: `Table storage rejected the ${table} row for good (${code}); the batch's other rows are stored`,
    deviceId: record.deviceId,
    messageId: record.messageId,
    correlationId: record.correlationId,
    enqueuedMs: record.enqueuedMs,
    partition: record.partition,
    sequenceNumber: record.sequenceNumber,
    offset: record.offset,
    contentType: record.contentType,
    contentEncoding: record.contentEncoding,
    body,
    bodySize: body.byteLength,
    systemProperties: {},
    properties: record.properties,
  };
}

/** Columns of a dead letter that are always small: everything else is dropped. */
const minimalColumns = [
  'reason',
  'partition',
  'bodySize',
  'enqueuedTime',
  'sequenceNumber',
] as const;

export function minimalDeadLetterEntity(entity: Entity, code: string): Entity {
  const minimal: Entity = {
    partitionKey: entity.partitionKey,
    rowKey: entity.rowKey,
    detail: `the full dead letter was rejected by Table storage (${code}); only this summary is kept`,
    deadLetterRejected: code,
  };
  for (const column of minimalColumns) {
    const value = entity[column];
    if (value !== undefined) minimal[column] = value;
  }
  return minimal;
}
