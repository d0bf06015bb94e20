/**
 * Building the cloud-to-device `Message` from a validated API request. JSON values go out as
 * UTF-8 JSON (`application/json`, `utf-8`) so device SDKs can parse them; strings as UTF-8 text.
 */
import { Message } from 'azure-iot-common';
import type { AckMode, SendMessageRequest } from './schemas';
import { assertC2dLimits } from './c2d-limits';

export interface OutgoingMessage {
  message: Message;
  messageId: string;
  ack: AckMode;
}

/**
 * Throws a 413 problem when IoT Hub would refuse the message as too large, or when a device on
 * MQTT could not receive it (see `c2d-limits.ts`).
 */
export function buildC2dMessage(
  request: SendMessageRequest,
  deviceId: string,
  messageId: string,
  now: Date,
): OutgoingMessage {
  const isText = typeof request.payload === 'string';
  const text = isText ? (request.payload as string) : JSON.stringify(request.payload);
  const body = Buffer.from(text, 'utf8');
  const contentType = request.contentType ?? (isText ? 'text/plain' : 'application/json');
  const contentEncoding = 'utf-8';
  assertC2dLimits({
    deviceId,
    body,
    messageId,
    correlationId: request.correlationId,
    contentType,
    contentEncoding,
    properties: request.properties ?? {},
  });
  const message = new Message(body);
  message.messageId = messageId;
  if (request.correlationId) message.correlationId = request.correlationId;
  const ack = request.ack ?? 'none';
  message.ack = ack;
  if (request.ttlSeconds !== undefined) {
    // Milliseconds since the epoch, as the SDK samples use: rhea encodes a number as an AMQP
    // timestamp everywhere, while a Date from another realm (Jest's sandbox) fails to encode.
    message.expiryTimeUtc = now.getTime() + request.ttlSeconds * 1000;
  }
  // The typings narrow contentType to 'application/json'; the wire takes any media type.
  Object.assign(message, { contentType, contentEncoding });
  for (const [key, value] of Object.entries(request.properties ?? {})) {
    message.properties.add(key, value);
  }
  return { message, messageId, ack };
}
