/**
 * IoT Hub's HTTPS device messages on the wire, as `azure-iot-device-http` 1.14.x speaks them:
 * telemetry properties in `iothub-*` request headers (or in the JSON of a batch), and C2D
 * messages as a body with `iothub-*` response headers and the lock token in the `ETag`.
 */
import type { C2DMessage, TelemetryInput } from '../core/contracts';
import { HubError } from '../core/contracts';

/** IoT Hub's limit for one device-to-cloud message, and for a batch (body and properties). */
export const maxTelemetryBytes = 256 * 1024;

/** The content type that marks a batch (`Client#sendEventBatch`). */
export const batchContentType = 'application/vnd.microsoft.iothub.json';

const appPrefix = 'iothub-app-';

/** The telemetry fields a device sets; the hub adds the rest. */
export type DeviceTelemetry = Pick<
  TelemetryInput,
  | 'body'
  | 'properties'
  | 'messageId'
  | 'correlationId'
  | 'userId'
  | 'to'
  | 'contentType'
  | 'contentEncoding'
  | 'expiryTime'
>;

type SystemField =
  'messageId' | 'correlationId' | 'userId' | 'to' | 'contentType' | 'contentEncoding';

const systemHeaders: Readonly<Record<string, SystemField>> = {
  'iothub-messageid': 'messageId',
  'iothub-correlationid': 'correlationId',
  'iothub-userid': 'userId',
  'iothub-to': 'to',
  'iothub-contenttype': 'contentType',
  'iothub-contentencoding': 'contentEncoding',
};

/** `IoTHub-Expiry`: the SDK writes whatever `expiryTimeUtc` holds (a date text or epoch ms). */
function parseExpiry(value: string): number {
  const time = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(time)) throw new HubError('ArgumentInvalid', 'iothub-expiry is not a date');
  return time;
}

/** The SDK percent-encodes the device id in `iothub-to` (its own, stricter encoding). */
function namesPath(value: string, path: string): boolean {
  try {
    return decodeURIComponent(value) === path;
  } catch {
    return false;
  }
}

/**
 * Splits name/value pairs (request headers with their original case, or a batch entry's
 * `properties`) into system and application properties. Anything else (`User-Agent`,
 * `Authorization`, `dt-subject`…) is not part of the message. `iothub-to` naming the events path
 * (`eventsPath`, not encoded) is the SDK addressing the request, not a property the device set.
 */
export function telemetryFromPairs(
  pairs: Iterable<readonly [string, string]>,
  eventsPath: string,
  body: Buffer,
): DeviceTelemetry {
  const message: DeviceTelemetry = { body, properties: {} };
  // A null-prototype object: names come from the device; '__proto__' must stay a plain key.
  const properties = Object.create(null) as Record<string, string>;
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (lower.startsWith(appPrefix) && lower.length > appPrefix.length) {
      properties[name.slice(appPrefix.length)] = value;
    } else if (lower === 'iothub-expiry') {
      message.expiryTime = parseExpiry(value);
    } else {
      const field = systemHeaders[lower];
      if (field === undefined || (field === 'to' && namesPath(value, eventsPath))) continue;
      message[field] = value;
    }
  }
  message.properties = { ...properties };
  return message;
}

/** `rawHeaders` (`[name, value, name, value, …]`) as pairs, keeping the case the device sent. */
export function headerPairs(rawHeaders: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    pairs.push([rawHeaders[i] ?? '', rawHeaders[i + 1] ?? '']);
  }
  return pairs;
}

/** What IoT Hub counts against the 256 KB limit: the body, property names and values. */
export function telemetryBytes(message: DeviceTelemetry): number {
  let total = message.body.length;
  const system = [
    message.messageId,
    message.correlationId,
    message.userId,
    message.to,
    message.contentType,
    message.contentEncoding,
  ];
  for (const value of system) if (value !== undefined) total += Buffer.byteLength(value, 'utf8');
  for (const [name, value] of Object.entries(message.properties)) {
    total += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

function invalidBatch(why: string): HubError {
  return new HubError('ArgumentInvalid', `the batch is not valid: ${why}`);
}

function batchEntryPairs(properties: unknown, index: number): Array<[string, string]> {
  if (properties === undefined) return [];
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
    throw invalidBatch(`entry ${index}: properties must be an object`);
  }
  return Object.entries(properties).map(([name, value]) => {
    if (typeof value !== 'string') {
      throw invalidBatch(`entry ${index}: property values must be strings`);
    }
    return [name, value];
  });
}

/**
 * A batch body: `[{"body":"<base64>","properties":{"iothub-app-<name>":"<value>",…}},…]`.
 * Throws ArgumentInvalid for anything else.
 */
export function parseBatch(raw: Buffer, eventsPath: string): DeviceTelemetry[] {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidBatch('the body is not JSON');
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidBatch('the body must be a non-empty JSON array');
  }
  return value.map((entry: unknown, index) => {
    if (typeof entry !== 'object' || entry === null) {
      throw invalidBatch(`entry ${index} is not an object`);
    }
    const { body, properties } = entry as { body?: unknown; properties?: unknown };
    if (typeof body !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
      throw invalidBatch(`entry ${index}: body must be base64 text`);
    }
    const pairs = batchEntryPairs(properties, index);
    return telemetryFromPairs(pairs, eventsPath, Buffer.from(body, 'base64'));
  });
}

/** The response headers of a C2D delivery (`GET …/messages/deviceBound`). */
export function c2dResponseHeaders(message: C2DMessage): Record<string, string> {
  const headers: Record<string, string> = {
    // The SDK strips the first and last character of the ETag to get the lock token.
    etag: `"${message.lockToken}"`,
    'iothub-messageid': message.messageId,
    'iothub-to': message.to,
    'iothub-deliverycount': String(message.deliveryCount),
    'iothub-enqueuedtime': new Date(message.enqueuedTime).toUTCString(),
    'iothub-expiry': new Date(message.expiryTime).toISOString(),
    'iothub-ack': message.ack,
    'content-type': message.contentType ?? 'application/octet-stream',
  };
  if (message.correlationId !== undefined) headers['iothub-correlationid'] = message.correlationId;
  if (message.userId !== undefined) headers['iothub-userid'] = message.userId;
  if (message.contentType !== undefined) headers['iothub-contenttype'] = message.contentType;
  if (message.contentEncoding !== undefined) {
    headers['iothub-contentencoding'] = message.contentEncoding;
  }
  for (const [name, value] of Object.entries(message.properties)) {
    headers[`${appPrefix}${name}`] = value;
  }
  return headers;
}
