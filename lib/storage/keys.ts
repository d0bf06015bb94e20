/**
 * Table storage key helpers shared by the telemetry tables.
 *
 * PartitionKey and RowKey may not contain `/`, `\`, `#`, `?` or control characters, but IoT Hub
 * device ids may contain `#`, `?` and `%`. Keys therefore carry a reversible percent-escaping of
 * the id; the readable id is stored in its own column.
 */

// eslint-disable-next-line no-control-regex -- control characters are exactly what keys forbid
const forbiddenKeyCharacters = /[%/\\#?\u0000-\u001f\u007f-\u009f]/g;

/** Escapes a value (a device id, a partition id) into a valid, reversible key segment. */
export function escapeKey(value: string): string {
  return value.replace(
    forbiddenKeyCharacters,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

/** Reverses `escapeKey`. */
export function unescapeKey(key: string): string {
  return key.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Milliseconds since the epoch fit in 13 digits until the year 2286. */
const maxTime = 9_999_999_999_999;
const timeDigits = 13;
/** Event Hubs sequence numbers are signed 64-bit integers: at most 19 decimal digits. */
const sequenceDigits = 19;
const maxSequence = 10n ** 19n - 1n;
const maxSafeSequence = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A fixed-width key prefix that sorts newest first: Table storage returns rows of a partition in
 * ascending RowKey order, so inverting the time makes "newest first" the natural read order.
 */
export function invertedTime(epochMs: number): string {
  const clamped = Math.min(Math.max(Math.trunc(epochMs), 0), maxTime);
  return String(maxTime - clamped).padStart(timeDigits, '0');
}

/** Inverted sequence number, so events enqueued in the same millisecond also read newest first. */
export function invertedSequence(sequenceNumber: bigint): string {
  if (sequenceNumber >= 0n && sequenceNumber <= maxSafeSequence) {
    // (10^19 - 1) - n, computed in two exact halves: BigInt arithmetic is several times slower
    // and this runs once per event.
    const n = Number(sequenceNumber);
    const high = Math.floor(n / 1e9);
    const low = n - high * 1e9;
    return (
      String(9_999_999_999 - high).padStart(10, '0') + String(999_999_999 - low).padStart(9, '0')
    );
  }
  const clamped =
    sequenceNumber < 0n ? 0n : sequenceNumber > maxSequence ? maxSequence : sequenceNumber;
  return String(maxSequence - clamped).padStart(sequenceDigits, '0');
}

/**
 * The row key of one event: inverted enqueue time, partition, inverted sequence number.
 *
 * Everything in it comes from the event's position in the hub, never from processing time, so a
 * replayed batch computes the same keys and its upserts overwrite instead of duplicating.
 */
export function eventRowKey(
  enqueuedMs: number,
  partitionId: string,
  sequenceNumber: bigint,
): string {
  return `${invertedTime(enqueuedMs)}_${escapedPartition(partitionId)}_${invertedSequence(sequenceNumber)}`;
}

// A batch comes from one partition: remember the last escaping instead of redoing it per event.
let lastPartition = '';
let lastEscapedPartition = '';
function escapedPartition(partitionId: string): string {
  if (partitionId !== lastPartition) {
    lastEscapedPartition = escapeKey(partitionId);
    lastPartition = partitionId;
  }
  return lastEscapedPartition;
}

/**
 * RowKey bounds selecting events enqueued in [fromMs, toMs] (both inclusive): `ge` the first,
 * `lt` the second. Either side may be open.
 */
export function rowKeyRangeForTimes(
  fromMs: number | undefined,
  toMs: number | undefined,
): { rowKeyFrom?: string; rowKeyBefore?: string } {
  return {
    ...(toMs !== undefined ? { rowKeyFrom: invertedTime(toMs) } : {}),
    // All keys of millisecond `fromMs` start with invertedTime(fromMs), which sorts just below
    // invertedTime(fromMs - 1).
    ...(fromMs !== undefined && fromMs > 0 ? { rowKeyBefore: invertedTime(fromMs - 1) } : {}),
  };
}
