/**
 * IoT Hub's limits on a cloud-to-device message, checked before the message goes to the hub so
 * that the hub never holds a message it refuses or a device cannot receive.
 *
 * - Size: IoT Hub counts the body, the values of the system properties and the names and values
 *   of the application properties (all ASCII, so characters = bytes) against 64 KB.
 * - MQTT: a device on MQTT receives the properties URL-encoded in the topic, and an MQTT topic
 *   holds at most 65,535 bytes. Token characters such as `%`, `&` and `#` triple when encoded, so
 *   a message under 64 KB can still be undeliverable over MQTT; such a message is refused too.
 */
import { ApiError } from '../http/problem';
import { maxC2dMessageBytes } from '../iothub/limits';

export { maxC2dMessageBytes };
/**
 * A send request's body may exceed the message it carries (JSON quoting and escaping of the
 * payload, the other fields), so it gets room beyond 64 KB; the message itself is then measured.
 */
export const maxMessageRequestBytes = 4 * maxC2dMessageBytes;
/** MQTT 3.1.1 encodes the topic length in two bytes. */
export const maxMqttTopicBytes = 65_535;
/** `$.exp` is always on the topic: the hub applies its default TTL when none is set. */
const expiryPlaceholder = new Date(0).toISOString();

/** What IoT Hub counts of a message: the parts this back end sets. */
export interface C2dMessageParts {
  deviceId: string;
  body: Buffer;
  messageId: string;
  correlationId?: string | undefined;
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  properties: Readonly<Record<string, string>>;
}

function deviceboundTo(deviceId: string): string {
  return `/devices/${deviceId}/messages/devicebound`;
}

function systemValues(parts: C2dMessageParts): string[] {
  const values = [parts.messageId, deviceboundTo(parts.deviceId)];
  for (const value of [parts.correlationId, parts.contentType, parts.contentEncoding]) {
    if (value !== undefined) values.push(value);
  }
  return values;
}

/** The size IoT Hub measures: body + system property values + property names and values. */
export function c2dMessageBytes(parts: C2dMessageParts): number {
  let total = parts.body.length;
  for (const value of systemValues(parts)) total += Buffer.byteLength(value, 'utf8');
  for (const [name, value] of Object.entries(parts.properties)) {
    total += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

function pairBytes(key: string, value: string): number {
  return encodeURIComponent(key).length + 1 + encodeURIComponent(value).length;
}

/**
 * The length of `devices/{id}/messages/devicebound/{bag}` as IoT Hub publishes it: every key
 * and value URL-encoded, pairs joined by `&`.
 */
export function mqttTopicBytes(parts: C2dMessageParts): number {
  const pairs: number[] = [
    pairBytes('$.mid', parts.messageId),
    pairBytes('$.to', deviceboundTo(parts.deviceId)),
    pairBytes('$.exp', expiryPlaceholder),
  ];
  if (parts.correlationId !== undefined) pairs.push(pairBytes('$.cid', parts.correlationId));
  if (parts.contentType !== undefined) pairs.push(pairBytes('$.ct', parts.contentType));
  if (parts.contentEncoding !== undefined) pairs.push(pairBytes('$.ce', parts.contentEncoding));
  for (const [name, value] of Object.entries(parts.properties)) pairs.push(pairBytes(name, value));
  // Counted with the id URL-encoded: never shorter than the raw id, so the bound holds whether or
  // not a hub escapes MQTT wildcards (`+`, `#`) in the topic's device id.
  const prefix = `devices/${encodeURIComponent(parts.deviceId)}/messages/devicebound/`.length;
  return prefix + pairs.reduce((sum, n) => sum + n, 0) + pairs.length - 1;
}

/** Throws a 413 problem naming the limit when IoT Hub or an MQTT device could not take it. */
export function assertC2dLimits(parts: C2dMessageParts): void {
  const size = c2dMessageBytes(parts);
  if (size > maxC2dMessageBytes) {
    throw new ApiError(
      'payloadTooLarge',
      `The message is ${size} bytes; IoT Hub limits cloud-to-device messages to ${maxC2dMessageBytes} bytes, counting the payload, the system property values (message id, correlation id, content type and encoding, destination) and the property names and values.`,
    );
  }
  const topic = mqttTopicBytes(parts);
  if (topic > maxMqttTopicBytes) {
    throw new ApiError(
      'payloadTooLarge',
      `The message's properties, URL-encoded into the MQTT topic, need ${topic} bytes; an MQTT topic holds at most ${maxMqttTopicBytes}. Use fewer or shorter properties, or fewer characters that need encoding (% & # $ + ^ \` |).`,
    );
  }
}
