/**
 * Translation between IoT Hub's service-side AMQP messages (as azure-iothub's `Client` sends and
 * reads them) and the core's C2D and feedback types. Pure functions: no links, no I/O.
 */
import { message as amqpMessage, uuid_to_string } from 'rhea';
import {
  HubError,
  type AckMode,
  type C2DMessageInput,
  type FeedbackBatch,
  type HubErrorCode,
} from '../core/contracts';

export const deviceboundAddress = '/messages/devicebound';
export const feedbackAddress = '/messages/serviceBound/feedback';
export const fileNotificationsAddress = '/messages/serviceBound/filenotifications';
export const feedbackContentType = 'application/vnd.microsoft.iothub.feedback.json';

/** IoT Hub treats its link addresses case-insensitively (the SDK writes `serviceBound`). */
export function sameAddress(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

function invalid(message: string): HubError {
  return new HubError('ArgumentInvalid', message);
}

const deviceboundTo = /^\/devices\/([^/]+)\/messages\/devicebound$/i;

/** The device a C2D message is for, from its `to`: `/devices/<URL-encoded id>/messages/devicebound`. */
export function deviceIdFromTo(to: unknown): string {
  if (typeof to !== 'string') throw invalid('the message has no "to" address');
  const match = deviceboundTo.exec(to);
  const encoded = match?.[1];
  if (!encoded) {
    throw invalid(
      `"to" must be /devices/{deviceId}/messages/devicebound, not ${JSON.stringify(to)}`,
    );
  }
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw invalid('"to" holds a malformed URL-encoded device id');
  }
}

/**
 * `message_id` / `correlation_id` as text. The SDK sends UUID-looking ids as AMQP uuid, which
 * rhea decodes to a 16-byte Buffer; ulongs arrive as numbers; strings stay strings.
 */
export function messageIdText(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) {
    return value.length === 16 ? uuid_to_string(value) : value.toString('hex');
  }
  throw invalid(`${field} has an unsupported type`);
}

function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  // AMQP `user-id` is binary.
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  throw invalid(`${field} must be a string`);
}

/** `absolute_expiry_time` (an AMQP timestamp, which rhea decodes to a Date) in ms. */
export function expiryTime(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(ms)) throw invalid('absolute_expiry_time is not a timestamp');
  // The epoch means "not set" to some clients.
  return ms > 0 ? ms : undefined;
}

const ackModes: readonly AckMode[] = ['none', 'positive', 'negative', 'full'];

export function ackMode(value: unknown): AckMode {
  if (value === undefined || value === null) return 'none';
  const mode = typeof value === 'string' ? value.toLowerCase() : undefined;
  const known = ackModes.find((m) => m === mode);
  if (!known) throw invalid(`iothub-ack must be one of ${ackModes.join(', ')}`);
  return known;
}

/** An application property value as the text IoT Hub keeps (strings, numbers, booleans, dates). */
export function propertyText(key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value instanceof Date) return value.toISOString();
  throw invalid(`application property ${JSON.stringify(key)} must be a string or a number`);
}

function isBufferList(value: unknown): value is Buffer[] {
  return Array.isArray(value) && value.every((v) => Buffer.isBuffer(v));
}

const dataSectionCode = 0x75;

/** The payload: one or more data sections, or an amqp-value string or binary. */
export function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'object' && 'typecode' in body && 'content' in body) {
    const { typecode, content } = body;
    if (typecode === dataSectionCode) {
      if (Buffer.isBuffer(content)) return content;
      if (isBufferList(content)) return Buffer.concat(content);
    }
  }
  throw invalid('the body must be a data section or an amqp-value string');
}

export interface DeviceboundMessage {
  deviceId: string;
  input: C2DMessageInput;
}

/** A message received on `/messages/devicebound`, as the core's enqueue input. Throws ArgumentInvalid. */
export function toC2DMessage(message: Record<string, unknown>): DeviceboundMessage {
  const deviceId = deviceIdFromTo(message.to);
  const applicationProperties: unknown = message.application_properties;
  const properties: Record<string, string> = {};
  let ack: AckMode = 'none';
  if (typeof applicationProperties === 'object' && applicationProperties !== null) {
    for (const [key, value] of Object.entries(applicationProperties)) {
      if (key === 'iothub-ack') {
        ack = ackMode(value);
        continue;
      }
      const text = propertyText(key, value);
      if (text !== undefined) properties[key] = text;
    }
  }
  const input: C2DMessageInput = { ack, properties, body: bodyBytes(message.body) };
  const messageId = messageIdText(message.message_id, 'message_id');
  const correlationId = messageIdText(message.correlation_id, 'correlation_id');
  const userId = optionalText(message.user_id, 'user_id');
  const contentType = optionalText(message.content_type, 'content_type');
  const contentEncoding = optionalText(message.content_encoding, 'content_encoding');
  const expiry = expiryTime(message.absolute_expiry_time);
  if (messageId !== undefined) input.messageId = messageId;
  if (correlationId !== undefined) input.correlationId = correlationId;
  if (userId !== undefined) input.userId = userId;
  if (contentType !== undefined) input.contentType = contentType;
  if (contentEncoding !== undefined) input.contentEncoding = contentEncoding;
  if (expiry !== undefined) input.expiryTime = expiry;
  return { deviceId, input };
}

/** The AMQP condition a rejected C2D delivery carries; azure-iothub maps it to its error classes. */
export function rejectionCondition(code: HubErrorCode): string {
  switch (code) {
    case 'DeviceNotFound':
      return 'amqp:not-found';
    case 'DeviceMaximumQueueDepthExceeded':
      return 'amqp:resource-limit-exceeded';
    case 'MessageTooLarge':
      return 'amqp:link:message-size-exceeded';
    case 'ArgumentInvalid':
      return 'amqp:invalid-field';
    case 'Unauthorized':
      return 'amqp:unauthorized-access';
    case 'ThrottlingException':
      return 'com.microsoft:device-container-throttled';
    default:
      return 'amqp:internal-error';
  }
}

/**
 * A feedback batch as IoT Hub sends it on `/messages/serviceBound/feedback`: a data section with
 * the JSON array of records. The .NET SDK also reads the user id and the
 * `iothub-enqueuedtime` annotation, so both are set.
 */
export function toFeedbackMessage(batch: FeedbackBatch, hubName: string): Record<string, unknown> {
  const enqueued = new Date(batch.enqueuedTime);
  return {
    message_id: batch.batchId,
    user_id: Buffer.from(hubName, 'utf8'),
    content_type: feedbackContentType,
    content_encoding: 'utf-8',
    creation_time: enqueued,
    message_annotations: { 'iothub-enqueuedtime': enqueued },
    body: amqpMessage.data_section(Buffer.from(JSON.stringify(batch.records), 'utf8')),
  };
}
