/**
 * A stored D2C event as IoT Hub's Event Hub-compatible endpoint sends it. Types are wrapped
 * explicitly: the .NET client (the Functions host's trigger) casts annotation values strictly,
 * so a sequence number must be an AMQP long, times AMQP timestamps, and so on.
 *
 * This is the readable reference, built with rhea's own types; the endpoint sends the bytes of
 * `writeEventMessage` (event-writer.ts), which the unit tests hold to exactly this encoding.
 */
import { message as rheaMessage, types, type Message } from 'rhea';
import type { PartitionInfo, StoredEvent } from '../core/contracts';

/** Message annotation names (Event Hubs system properties plus IoT Hub's own). */
export const annotationNames = {
  sequenceNumber: 'x-opt-sequence-number',
  offset: 'x-opt-offset',
  enqueuedTime: 'x-opt-enqueued-time',
  deviceId: 'iothub-connection-device-id',
  authMethod: 'iothub-connection-auth-method',
  authGenerationId: 'iothub-connection-auth-generation-id',
  iothubEnqueuedTime: 'iothub-enqueuedtime',
  messageSource: 'iothub-message-source',
} as const;

export const runtimeMetricCapability = 'com.microsoft:enable-receiver-runtime-metric';

export function encodeEvent(event: StoredEvent): Message {
  const message: Message = Object.assign({} as Message, {
    message_annotations: {
      [annotationNames.sequenceNumber]: types.wrap_long(event.sequenceNumber),
      [annotationNames.offset]: types.wrap_string(event.offset),
      [annotationNames.enqueuedTime]: types.wrap_timestamp(event.enqueuedTime),
      [annotationNames.deviceId]: types.wrap_string(event.deviceId),
      [annotationNames.authMethod]: types.wrap_string(event.authMethod),
      [annotationNames.authGenerationId]: types.wrap_string(event.generationId),
      [annotationNames.iothubEnqueuedTime]: types.wrap_timestamp(event.enqueuedTime),
      [annotationNames.messageSource]: types.wrap_string('Telemetry'),
    },
    body: rheaMessage.data_section(event.body) as unknown,
  });
  if (event.messageId !== undefined) message.message_id = event.messageId;
  if (event.correlationId !== undefined) message.correlation_id = event.correlationId;
  // user_id is AMQP binary; rhea's typings say string, its encoder wants bytes.
  if (event.userId !== undefined) {
    (message as { user_id?: unknown }).user_id = Buffer.from(event.userId, 'utf8');
  }
  if (event.to !== undefined) message.to = event.to;
  if (event.contentType !== undefined) message.content_type = event.contentType;
  if (event.contentEncoding !== undefined) message.content_encoding = event.contentEncoding;
  if (event.expiryTime !== undefined) message.absolute_expiry_time = new Date(event.expiryTime);
  const properties: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.properties)) {
    properties[key] = types.wrap_string(value);
  }
  if (Object.keys(properties).length > 0) message.application_properties = properties;
  return message;
}

/** Delivery annotations for receivers that asked for runtime metrics (`trackLastEnqueuedEventProperties`). */
export function runtimeMetricAnnotations(
  info: PartitionInfo,
  now: number,
): Record<string, unknown> {
  return {
    last_enqueued_sequence_number: types.wrap_long(info.lastEnqueuedSequenceNumber),
    last_enqueued_offset: types.wrap_string(info.lastEnqueuedOffset),
    last_enqueued_time_utc: types.wrap_timestamp(info.lastEnqueuedTime),
    runtime_info_retrieval_time_utc: types.wrap_timestamp(now),
  };
}
