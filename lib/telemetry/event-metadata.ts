/**
 * Per-event facts from the Event Hub trigger's metadata (`context.triggerMetadata`).
 *
 * The real host sends `SystemPropertiesArray`, `PropertiesArray`, `EnqueuedTimeUtcArray`,
 * `SequenceNumberArray`, `OffsetArray` and `PartitionContext`; `@azure/functions` camel-cases
 * every key recursively (`systemPropertiesArray`, custom property `Alert` → `alert`) and drops
 * null entries from arrays. The per-event system properties are therefore the source of truth;
 * the parallel arrays are used only when they line up with the batch.
 *
 * System property names differ by producer: the .NET host uses AMQP names (`message-id`,
 * `content-type`, `x-opt-sequence-number`, plus `SequenceNumber`, `Offset`, `EnqueuedTimeUtc`),
 * `@azure/event-hubs` uses camel case (`messageId`, `contentType`); both are read.
 */

/** IoT Hub stamps the authenticated device on every device-to-cloud message. */
export const deviceIdProperty = 'iothub-connection-device-id';

export interface EventMetadata {
  /** The authenticated device (trusted); undefined when the hub did not say. */
  deviceId: string | undefined;
  messageId: string | undefined;
  correlationId: string | undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** When the hub enqueued the event (ms since the epoch). */
  enqueuedMs: number | undefined;
  sequenceNumber: bigint | undefined;
  offset: string | undefined;
  /** The Event Hub partition, `-` when the metadata does not name it. */
  partition: string;
  /** The device's custom application properties, values as text. */
  properties: Record<string, string>;
  /** The system properties as received (for dead letters). */
  systemProperties: Record<string, unknown>;
}

type Bag = Record<string, unknown>;

function isBag(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `name` (camel case, as the library delivers it) or its PascalCase original. */
function field(bag: Bag, name: string): unknown {
  const value = bag[name];
  if (value !== undefined) return value;
  return bag[name.charAt(0).toUpperCase() + name.slice(1)];
}

function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Message and correlation ids may be strings, numbers, or AMQP uuids (16 bytes). Kept whole: an
 * id too long to store dead-letters the event (`limits.ts`) rather than being cut silently.
 */
export function idText(value: unknown): string | undefined {
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else if (value instanceof Uint8Array && value.byteLength === 16) text = formatUuid(value);
  return text === undefined || text === '' ? undefined : text;
}

function plainText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i += 1) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    value = value * 10 + d;
  }
  return value;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fff…]Z` without `Date.parse` (which dominates the per-event metadata
 * cost); anything else returns undefined and takes the general path.
 */
function isoUtcMs(text: string): number | undefined {
  const length = text.length;
  if (
    length < 20 ||
    text.charCodeAt(length - 1) !== 90 /* Z */ ||
    text.charCodeAt(4) !== 45 /* - */ ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(13) !== 58 /* : */ ||
    text.charCodeAt(16) !== 58
  ) {
    return undefined;
  }
  let ms = 0;
  if (length > 20) {
    if (text.charCodeAt(19) !== 46 /* . */) return undefined;
    const fraction = Math.min(length - 21, 3);
    ms = digits(text, 20, fraction) * (fraction === 1 ? 100 : fraction === 2 ? 10 : 1);
    if (length - 21 > 3 && Number.isNaN(digits(text, 23, length - 24))) return undefined;
  }
  const second = digits(text, 17, 2);
  if (!(second <= 59) || Number.isNaN(ms)) return undefined;
  // Events of one batch are mostly enqueued within the same minute: reuse its parsed start.
  if (!text.startsWith(lastMinute)) {
    const month = digits(text, 5, 2);
    const day = digits(text, 8, 2);
    const hour = digits(text, 11, 2);
    const minute = digits(text, 14, 2);
    if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59)) {
      return undefined;
    }
    const start = Date.UTC(digits(text, 0, 4), month - 1, day, hour, minute);
    if (!Number.isFinite(start)) return undefined;
    lastMinute = text.slice(0, 17);
    lastMinuteMs = start;
  }
  return lastMinuteMs + second * 1000 + ms;
}

/** `YYYY-MM-DDTHH:MM:` of the last parsed time, and that minute's epoch ms. */
let lastMinute = '\u0000';
let lastMinuteMs = 0;

/** Epoch ms from a Date, a number of ms, or an ISO string (.NET omits the zone for UTC kinds). */
export function timeMs(value: unknown): number | undefined {
  if (typeof value === 'string') {
    // Fast path: what both hosts send (ISO 8601 in UTC with a trailing Z).
    const fast = isoUtcMs(value);
    if (fast !== undefined) return fast;
    if (value.endsWith('Z')) {
      const ms = Date.parse(value);
      return Number.isFinite(ms) ? ms : undefined;
    }
    if (value === '') return undefined;
    if (/^\d+$/.test(value)) return Number(value);
    const hasZone = /([+-]\d{2}:?\d{2}|z)$/.test(value);
    const ms = Date.parse(hasZone || !value.includes('T') ? value : `${value}Z`);
    return Number.isFinite(ms) ? ms : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

export function sequenceOf(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value >= 0n ? value : undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'string' && /^\d{1,19}$/.test(value)) return BigInt(value);
  return undefined;
}

function offsetOf(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

function propertyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

function propertiesOf(value: unknown): Record<string, string> {
  if (!isBag(value)) return {};
  // Usually every value is already text: share the object instead of copying it.
  let allText = true;
  for (const name in value) {
    if (typeof value[name] !== 'string') {
      allText = false;
      break;
    }
  }
  if (allText) return value as Record<string, string>;
  const properties: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    if (raw === undefined || raw === null) continue;
    properties[name] = propertyText(raw);
  }
  return properties;
}

/** The batch's Event Hub partition from the trigger metadata, `-` when it does not name it. */
export function partitionOf(triggerMetadata: unknown): string {
  const context = isBag(triggerMetadata) ? field(triggerMetadata, 'partitionContext') : undefined;
  const partitionId = isBag(context) ? field(context, 'partitionId') : undefined;
  if (typeof partitionId === 'string' && partitionId !== '') return partitionId.slice(0, 64);
  return typeof partitionId === 'number' ? String(partitionId) : '-';
}

/** Reads the batch-level metadata once; `forEvent(i)` then costs a few property lookups. */
export class BatchMetadata {
  readonly #systemProperties: readonly unknown[] | undefined;
  readonly #properties: readonly unknown[] | undefined;
  readonly #enqueuedTimes: readonly unknown[] | undefined;
  readonly #sequenceNumbers: readonly unknown[] | undefined;
  readonly #offsets: readonly unknown[] | undefined;
  readonly #single: { systemProperties: unknown; properties: unknown } | undefined;
  readonly partition: string;

  constructor(triggerMetadata: unknown, eventCount: number) {
    const bag = isBag(triggerMetadata) ? triggerMetadata : {};
    // Parallel arrays lose their null entries, so use them only when they still line up.
    const aligned = (value: unknown): readonly unknown[] | undefined =>
      Array.isArray(value) && value.length === eventCount ? value : undefined;
    this.#systemProperties = aligned(field(bag, 'systemPropertiesArray'));
    this.#properties = aligned(field(bag, 'propertiesArray'));
    this.#enqueuedTimes = aligned(field(bag, 'enqueuedTimeUtcArray'));
    this.#sequenceNumbers = aligned(field(bag, 'sequenceNumberArray'));
    this.#offsets = aligned(field(bag, 'offsetArray'));
    // Cardinality `one` delivers the same facts without the `Array` suffix.
    this.#single =
      eventCount === 1 && this.#systemProperties === undefined
        ? { systemProperties: field(bag, 'systemProperties'), properties: field(bag, 'properties') }
        : undefined;
    this.partition = partitionOf(bag);
  }

  forEvent(index: number): EventMetadata {
    const rawSystem = this.#single?.systemProperties ?? this.#systemProperties?.[index];
    const system = isBag(rawSystem) ? rawSystem : {};
    const rawDeviceId = system[deviceIdProperty];
    // Constant property names (not a loop over candidates) keep these lookups monomorphic.
    return {
      deviceId: typeof rawDeviceId === 'string' && rawDeviceId !== '' ? rawDeviceId : undefined,
      messageId: idText(system['message-id'] ?? system.messageId ?? system.MessageId),
      correlationId: idText(
        system['correlation-id'] ?? system.correlationId ?? system.CorrelationId,
      ),
      contentType: plainText(system['content-type'] ?? system.contentType ?? system.ContentType),
      contentEncoding: plainText(
        system['content-encoding'] ?? system.contentEncoding ?? system.ContentEncoding,
      ),
      enqueuedMs: timeMs(
        system.enqueuedTimeUtc ??
          system.EnqueuedTimeUtc ??
          system['x-opt-enqueued-time'] ??
          this.#enqueuedTimes?.[index] ??
          system['iothub-enqueuedtime'],
      ),
      sequenceNumber: sequenceOf(
        system.sequenceNumber ??
          system.SequenceNumber ??
          system['x-opt-sequence-number'] ??
          this.#sequenceNumbers?.[index],
      ),
      offset: offsetOf(
        system.offset ?? system.Offset ?? system['x-opt-offset'] ?? this.#offsets?.[index],
      ),
      partition: this.partition,
      properties: propertiesOf(this.#single?.properties ?? this.#properties?.[index]),
      systemProperties: system,
    };
  }
}
