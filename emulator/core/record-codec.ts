/**
 * Binary payloads of the store's log records. Telemetry is `[type][u32 header length][header
 * JSON][body bytes]` so bodies are never base64-inflated on the hot path; state changes are small
 * and rare enough for JSON.
 */
import type { C2DMessage, StoredEvent } from './contracts';
import type { StateChange } from './store';

const EVENT = 1;
const SEGMENT_START = 2;
const STATE_CHANGES = 3;

export type DecodedRecord =
  | { type: 'event'; event: StoredEvent }
  | { type: 'segment-start'; nextSequenceNumbers: Record<string, number> }
  | { type: 'state'; changes: StateChange[] };

/** The event's payload, after `headroom` free bytes (so the frame header needs no copy). */
export function encodeEvent(event: StoredEvent, headroom = 0): Buffer {
  const { body, ...header } = event;
  const json = JSON.stringify(header);
  const jsonLength = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(headroom + 5 + jsonLength + body.length);
  out.writeUInt8(EVENT, headroom);
  out.writeUInt32LE(jsonLength, headroom + 1);
  out.write(json, headroom + 5, 'utf8');
  body.copy(out, headroom + 5 + jsonLength);
  return out;
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
    const headerLength = payload.readUInt32LE(1);
    const header = JSON.parse(payload.toString('utf8', 5, 5 + headerLength)) as Omit<
      StoredEvent,
      'body'
    >;
    // Copied out so the event does not pin the whole file buffer it was read from.
    const body = Buffer.from(payload.subarray(5 + headerLength));
    return { type: 'event', event: { ...header, body } };
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
