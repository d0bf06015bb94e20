/**
 * Where a receiver starts reading, from the `apache.org:selector-filter:string` filter that
 * @azure/event-hubs and the .NET client put on the link source, e.g.
 * `amqp.annotation.x-opt-offset > '-1'` (earliest), `amqp.annotation.x-opt-offset > '@latest'`,
 * `amqp.annotation.x-opt-sequence-number >= '42'`, `amqp.annotation.x-opt-enqueued-time > '1700000000000'`.
 *
 * Parsing is pure (unit-tested); resolving against a partition needs the D2C log.
 */
import type { DeviceToCloud } from '../core/contracts';

export type StartPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: bigint; inclusive: boolean }
  | { kind: 'sequenceNumber'; sequenceNumber: number; inclusive: boolean }
  | { kind: 'enqueuedTime'; time: number; inclusive: boolean };

/** Thrown for a filter the endpoint cannot honour; the link is detached with `amqp:invalid-field`. */
export class InvalidFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidFilterError';
  }
}

/** The descriptor of the selector filter, as a symbol and as the numeric code 0x0000468C:0x00000004. */
export const selectorFilterName = 'apache.org:selector-filter:string';
const selectorFilterCode = 0x468c00000004;

const expression =
  /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/i;

const integer = /^-?\d{1,30}$/;

/** Parses one selector expression; throws InvalidFilterError with a reason the client may see. */
export function parseSelector(text: string): StartPosition {
  const match = expression.exec(text);
  if (!match) {
    throw new InvalidFilterError(
      'unsupported selector: expected amqp.annotation.x-opt-offset, x-opt-sequence-number or x-opt-enqueued-time compared with > or >= to a quoted value',
    );
  }
  const [, rawField = '', operator, value = ''] = match;
  const field = rawField.toLowerCase();
  const inclusive = operator === '>=';
  if (field === 'x-opt-offset') {
    if (value === '@latest') return { kind: 'latest' };
    if (!integer.test(value))
      throw new InvalidFilterError('x-opt-offset must be a number, -1 or @latest');
    const offset = BigInt(value);
    // '-1' is the SDKs' "earliest"; any negative offset lies before the first event.
    if (offset < 0n) return { kind: 'earliest' };
    return { kind: 'offset', offset, inclusive };
  }
  if (field === 'x-opt-sequence-number') {
    if (!integer.test(value))
      throw new InvalidFilterError('x-opt-sequence-number must be an integer');
    const sequenceNumber = Number(value);
    if (!Number.isSafeInteger(sequenceNumber)) {
      throw new InvalidFilterError('x-opt-sequence-number is out of range');
    }
    return { kind: 'sequenceNumber', sequenceNumber, inclusive };
  }
  // x-opt-enqueued-time: milliseconds since the epoch (both SDKs); an ISO date is accepted too.
  let time: number;
  if (integer.test(value)) time = Number(value);
  else if (/^\d{4}-\d{2}-\d{2}/.test(value)) time = Date.parse(value);
  else time = Number.NaN;
  if (!Number.isSafeInteger(time)) {
    throw new InvalidFilterError('x-opt-enqueued-time must be milliseconds since the epoch');
  }
  return { kind: 'enqueuedTime', time, inclusive };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
  );
}

/** rhea leaves a described filter value as `{ descriptor, value }` (Typed), possibly nested once. */
function describedText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isRecord(value)) {
    if ('value' in value) return describedText(value.value);
  }
  return undefined;
}

function descriptorMatches(value: unknown): boolean {
  if (!isRecord(value) || !('descriptor' in value)) return true;
  const descriptor: unknown = value.descriptor;
  const raw = isRecord(descriptor) && 'value' in descriptor ? descriptor.value : descriptor;
  if (typeof raw === 'string') return raw === selectorFilterName;
  if (typeof raw === 'number') return raw === selectorFilterCode;
  // A ulong descriptor beyond 32 bits may arrive as a Buffer; accept it, the key already says.
  return true;
}

/**
 * The start position named by a link source's filter set (absent filter: earliest, as IoT Hub's
 * endpoint does). Unknown filter kinds are ignored; a malformed selector throws.
 */
export function startPositionFromFilter(filter: unknown): StartPosition {
  if (filter === undefined || filter === null) return { kind: 'earliest' };
  if (!isRecord(filter)) throw new InvalidFilterError('the source filter must be a map');
  const entry = Object.entries(filter).find(([key]) => key.toLowerCase() === selectorFilterName);
  if (!entry) return { kind: 'earliest' };
  const [, value] = entry;
  if (!descriptorMatches(value))
    throw new InvalidFilterError('unexpected selector filter descriptor');
  const text = describedText(value);
  if (text === undefined) throw new InvalidFilterError('the selector filter must be a string');
  return parseSelector(text);
}

/** The sequence number after the last one written (the first to be written next). */
export function nextSequenceNumber(d2c: DeviceToCloud, partitionId: string): number {
  const info = d2c.info(partitionId);
  return Math.max(info.lastEnqueuedSequenceNumber + 1, info.beginSequenceNumber, 0);
}

/** First stored sequence number whose offset satisfies the comparison (offsets grow with sequence numbers). */
function sequenceNumberAfterOffset(
  d2c: DeviceToCloud,
  partitionId: string,
  offset: bigint,
  inclusive: boolean,
): number {
  const info = d2c.info(partitionId);
  const end = nextSequenceNumber(d2c, partitionId);
  if (info.isEmpty) return end;
  let low = Math.max(info.beginSequenceNumber, 0);
  let high = end;
  // Binary search over [low, high): reads one event per probe.
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const [event] = d2c.read(partitionId, middle, 1);
    if (!event) {
      high = middle;
      continue;
    }
    const eventOffset = BigInt(event.offset);
    const satisfies = inclusive ? eventOffset >= offset : eventOffset > offset;
    if (satisfies) high = middle;
    else low = event.sequenceNumber + 1;
  }
  return low;
}

/** The first sequence number the receiver should get. */
export function resolveStartSequenceNumber(
  d2c: DeviceToCloud,
  partitionId: string,
  position: StartPosition,
): number {
  switch (position.kind) {
    case 'earliest':
      return 0;
    case 'latest':
      return nextSequenceNumber(d2c, partitionId);
    case 'sequenceNumber':
      return Math.max(
        position.inclusive ? position.sequenceNumber : position.sequenceNumber + 1,
        0,
      );
    case 'enqueuedTime':
      return d2c.sequenceNumberAtTime(
        partitionId,
        position.inclusive ? position.time : position.time + 1,
      );
    case 'offset':
      return sequenceNumberAfterOffset(d2c, partitionId, position.offset, position.inclusive);
  }
}
