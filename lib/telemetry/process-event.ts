/**
 * Decode → validate → enrich for one event; pure and synchronous so it can be benchmarked and
 * unit-tested without storage. Invalid events become dead letters, never exceptions.
 */
import { decodeBody, rawBody } from './decode';
import { isValidDeviceId } from './device-id';
import type { EventMetadata } from './event-metadata';
import { unstorableField } from './limits';
import type { DeadLetter, DeadLetterReason, ProcessedEvent } from './model';
import { validateReading } from './schema';

export interface ProcessLimits {
  /** How much of an invalid body the dead letter keeps. */
  deadLetterMaxBodyBytes: number;
}

function deadLetter(
  body: unknown,
  meta: EventMetadata,
  reason: DeadLetterReason,
  detail: string,
  limits: ProcessLimits,
): ProcessedEvent {
  const raw = rawBody(body);
  const letter: DeadLetter = {
    reason,
    detail,
    deviceId: meta.deviceId,
    messageId: meta.messageId,
    correlationId: meta.correlationId,
    enqueuedMs: meta.enqueuedMs,
    partition: meta.partition,
    sequenceNumber: meta.sequenceNumber,
    offset: meta.offset,
    contentType: meta.contentType,
    contentEncoding: meta.contentEncoding,
    body: raw.subarray(0, Math.max(0, limits.deadLetterMaxBodyBytes)),
    bodySize: raw.byteLength,
    systemProperties: meta.systemProperties,
    properties: meta.properties,
  };
  return { kind: 'deadLetter', letter };
}

export function processEvent(
  body: unknown,
  meta: EventMetadata,
  limits: ProcessLimits,
): ProcessedEvent {
  const deviceId = meta.deviceId;
  if (deviceId === undefined) {
    return deadLetter(
      body,
      meta,
      'missing-device-id',
      'the event has no iothub-connection-device-id system property',
      limits,
    );
  }
  if (!isValidDeviceId(deviceId)) {
    return deadLetter(
      body,
      meta,
      'invalid-device-id',
      'iothub-connection-device-id is not a valid device id',
      limits,
    );
  }
  if (meta.enqueuedMs === undefined || meta.sequenceNumber === undefined) {
    // Without its position in the hub the reading cannot be keyed idempotently.
    return deadLetter(
      body,
      meta,
      'missing-position',
      'the event has no enqueued time or sequence number',
      limits,
    );
  }
  // Before decoding: a field Table storage cannot hold would fail the write of every reading
  // batched with it, and the retry would block the partition.
  const unstorable = unstorableField(meta);
  if (unstorable) return deadLetter(body, meta, unstorable.reason, unstorable.detail, limits);
  const decoded = decodeBody(body, meta.contentType, meta.contentEncoding);
  if (!decoded.ok) return deadLetter(body, meta, decoded.reason, decoded.detail, limits);
  const valid = validateReading(decoded.value);
  if (!valid.ok) return deadLetter(body, meta, 'invalid-reading', valid.detail, limits);
  return {
    kind: 'reading',
    record: {
      deviceId,
      reading: valid.reading,
      messageId: meta.messageId,
      correlationId: meta.correlationId,
      enqueuedMs: meta.enqueuedMs,
      partition: meta.partition,
      sequenceNumber: meta.sequenceNumber,
      offset: meta.offset,
      properties: meta.properties,
      contentType: meta.contentType,
      contentEncoding: meta.contentEncoding,
      base64: decoded.base64,
    },
  };
}
