/**
 * Binary payloads of the store's log records. Telemetry is
 * `[type u8][partition u32][sequence number f64][enqueued time f64][u32 header length][header
 * JSON][body bytes]`: bodies are never base64-inflated on the hot path, and the fields an index
 * needs are read without parsing JSON. The core keeps retained telemetry in this encoded form (off
 * the JS heap, cheap for the garbage collector) and decodes on read. State changes are small and
 * rare enough for JSON.
 */
import type { C2DMessage, StoredEvent } from './contracts';
import type { StateChange } from './store';

const EVENT = 1;
const SEGMENT_START = 2;
const STATE_CHANGES = 3;

export type DecodedRecord =
  | { type: 'event'; payload: Buffer }
  | { type: 'segment-start'; nextSequenceNumbers: Record<string, number> }
  | { type: 'state'; changes: StateChange[] };

const EVENT_FIXED_BYTES = 25;

/** The event's payload, after `headroom` free bytes (so a frame header needs no copy). */
export function encodeEvent(event: StoredEvent, headroom = 0): Buffer {
  const body = event.body;
  // Listed explicitly (a rest-destructure is much slower on this hot path); undefined drops out.
  const json = JSON.stringify({
    deviceId: event.deviceId,
    properties: event.properties,
    messageId: event.messageId,
    correlationId: event.correlationId,
    userId: event.userId,
    to: event.to,
    contentType: event.contentType,
    contentEncoding: event.contentEncoding,
    expiryTime: event.expiryTime,
    generationId: event.generationId,
    authMethod: event.authMethod,
  });
  const jsonLength = Buffer.byteLength(json, 'utf8');
  const at = headroom;
  const out = Buffer.allocUnsafe(at + EVENT_FIXED_BYTES + jsonLength + body.length);
  out.writeUInt8(EVENT, at);
  out.writeUInt32LE(Number(event.partitionId), at + 1);
  out.writeDoubleLE(event.sequenceNumber, at + 5);
  out.writeDoubleLE(event.enqueuedTime, at + 13);
  out.writeUInt32LE(jsonLength, at + 21);
  out.write(json, at + EVENT_FIXED_BYTES, 'utf8');
  body.copy(out, at + EVENT_FIXED_BYTES + jsonLength);
  return out;
}

/** The indexable fields of an encoded event, without parsing its header. */
export function peekEvent(payload: Buffer): {
  partitionId: string;
  sequenceNumber: number;
  enqueuedTime: number;
} {
  return {
    partitionId: String(payload.readUInt32LE(1)),
    sequenceNumber: payload.readDoubleLE(5),
    enqueuedTime: payload.readDoubleLE(13),
  };
}

export function decodeEvent(payload: Buffer): StoredEvent {
  const jsonLength = payload.readUInt32LE(21);
  const jsonEnd = EVENT_FIXED_BYTES + jsonLength;
  const h = JSON.parse(
    payload.toString('utf8', EVENT_FIXED_BYTES, jsonEnd),
  ) as Partial<StoredEvent>;
  const sequenceNumber = payload.readDoubleLE(5);
  // Built field by field (a spread is several times slower on this hot path).
  return {
    deviceId: h.deviceId ?? '',
    // A view, not a copy: retained payloads are immutable.
    body: payload.subarray(jsonEnd),
    properties: h.properties ?? {},
    messageId: h.messageId,
    correlationId: h.correlationId,
    userId: h.userId,
    to: h.to,
    contentType: h.contentType,
    contentEncoding: h.contentEncoding,
    expiryTime: h.expiryTime,
    generationId: h.generationId ?? '',
    authMethod: h.authMethod ?? '',
    partitionId: String(payload.readUInt32LE(1)),
    sequenceNumber,
    offset: String(sequenceNumber),
    enqueuedTime: payload.readDoubleLE(13),
  };
}

export function encodeSegmentStart(nextSequenceNumbers: Record<string, number>): Buffer {
  return withType(SEGMENT_START, JSON.stringify({ nextSequenceNumbers }));
}

type StoredChange =
  | Exclude<StateChange, { kind: 'c2d.enqueue' }>
  | {
      kind: 'c2d.enqueue';
      message: Omit<C2DMessage, 'body'> & { body: string };
    };

export function encodeStateChanges(changes: readonly StateChange[]): Buffer {
  const stored: StoredChange[] = changes.map((change) =>
    change.kind === 'c2d.enqueue'
      ? {
          kind: change.kind,
          message: { ...change.message, body: change.message.body.toString('base64') },
        }
      : change,
  );
  return withType(STATE_CHANGES, JSON.stringify(stored));
}

/** Throws on a record this version cannot read (the caller treats it as corruption). */
export function decodeRecord(payload: Buffer): DecodedRecord {
  const type = payload.readUInt8(0);
  if (type === EVENT) {
    if (payload.length < EVENT_FIXED_BYTES) throw new Error('Short event record');
    return { type: 'event', payload };
  }
  const json: unknown = JSON.parse(payload.toString('utf8', 1));
  if (type === SEGMENT_START) {
    const { nextSequenceNumbers } = json as { nextSequenceNumbers: Record<string, number> };
    return { type: 'segment-start', nextSequenceNumbers };
  }
  if (type === STATE_CHANGES) {
    const changes = (json as StoredChange[]).map((change): StateChange =>
      change.kind === 'c2d.enqueue'
        ? {
            kind: change.kind,
            message: { ...change.message, body: Buffer.from(change.message.body, 'base64') },
          }
        : change,
    );
    return { type: 'state', changes };
  }
  throw new Error(`Unknown record type ${type}`);
}

function withType(type: number, json: string): Buffer {
  const text = Buffer.from(json, 'utf8');
  const out = Buffer.allocUnsafe(1 + text.length);
  out.writeUInt8(type, 0);
  text.copy(out, 1);
  return out;
}
