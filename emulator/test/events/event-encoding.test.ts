/**
 * Event encoding (emulator/events/event-encoding.ts), with the exact AMQP types the .NET
 * client casts to.
 */
import { message as rheaMessage } from 'rhea';
import type { StoredEvent } from '../../core/contracts';
import { encodeEvent, runtimeMetricAnnotations } from '../../events/event-encoding';
import {
  deliveryAnnotations,
  input,
  mapSection,
  messageAnnotations,
} from '../support/amqp-sections';

/** One stored event with every property set, past 2^32 in sequence number. */
const event: StoredEvent = {
  ...input('device-1', {
    body: Buffer.from([1, 2, 3]),
    properties: { alert: 'high', 'a b': 'c&d' },
    messageId: 'm1',
    correlationId: 'c1',
    userId: 'u1',
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    expiryTime: Date.UTC(2030, 0, 1),
  }),
  partitionId: '2',
  sequenceNumber: 5_000_000_000,
  offset: '5000000000',
  enqueuedTime: Date.UTC(2025, 5, 1, 12),
};

describe('event encoding', () => {
  annotationTests();
  roundTripTests();
});

/** Message and delivery annotations, with their AMQP types. */
function annotationTests(): void {
  test('annotations carry the types the .NET client casts to', () => {
    const annotations = mapSection(encodeEvent(event), messageAnnotations);
    expect(annotations.get('x-opt-sequence-number')).toMatchObject({ type: 'Long' });
    expect(annotations.get('x-opt-offset')).toEqual({ type: 'Str8', value: '5000000000' });
    expect(annotations.get('x-opt-enqueued-time')?.type).toBe('Timestamp');
    expect(annotations.get('iothub-enqueuedtime')?.type).toBe('Timestamp');
    expect(annotations.get('iothub-connection-device-id')).toEqual({
      type: 'Str8',
      value: 'device-1',
    });
    expect(annotations.get('iothub-connection-auth-generation-id')).toEqual({
      type: 'Str8',
      value: 'gen-1',
    });
    expect(annotations.get('iothub-message-source')).toEqual({ type: 'Str8', value: 'Telemetry' });
    expect(annotations.get('iothub-connection-auth-method')?.value).toContain('"sas"');
    const small = mapSection(encodeEvent({ ...event, sequenceNumber: 3 }), messageAnnotations);
    expect(small.get('x-opt-sequence-number')?.type).toMatch(/Long$/);
  });

  test('runtime metric delivery annotations', () => {
    const message = encodeEvent(event);
    message.delivery_annotations = runtimeMetricAnnotations(
      {
        partitionId: '2',
        beginSequenceNumber: 0,
        lastEnqueuedSequenceNumber: 9,
        lastEnqueuedOffset: '9',
        lastEnqueuedTime: 1000,
        isEmpty: false,
      },
      2000,
    );
    const annotations = mapSection(message, deliveryAnnotations);
    expect(annotations.get('last_enqueued_sequence_number')).toMatchObject({
      type: 'SmallLong',
      value: 9,
    });
    expect(annotations.get('last_enqueued_offset')).toEqual({ type: 'Str8', value: '9' });
    expect(annotations.get('last_enqueued_time_utc')?.type).toBe('Timestamp');
    expect(annotations.get('runtime_info_retrieval_time_utc')?.type).toBe('Timestamp');
  });
}

/** Properties and body decoded by rhea as they were stored. */
function roundTripTests(): void {
  test('properties, application properties and body round-trip through rhea', () => {
    const decoded = rheaMessage.decode(rheaMessage.encode(encodeEvent(event)));
    expect(decoded.message_id).toBe('m1');
    expect(decoded.correlation_id).toBe('c1');
    expect(decoded.user_id).toEqual(Buffer.from('u1'));
    expect(decoded.content_type).toBe('application/json');
    expect(decoded.content_encoding).toBe('utf-8');
    expect((decoded.absolute_expiry_time as Date).getTime()).toBe(Date.UTC(2030, 0, 1));
    expect(decoded.application_properties).toEqual({ alert: 'high', 'a b': 'c&d' });
    expect(decoded.message_annotations?.['x-opt-sequence-number']).toBe(5_000_000_000);
    expect((decoded.message_annotations?.['x-opt-enqueued-time'] as Date).getTime()).toBe(
      event.enqueuedTime,
    );
    expect(decoded.body).toMatchObject({ typecode: 0x75, content: Buffer.from([1, 2, 3]) });
  });

  test('optional properties are left out when the device set none', () => {
    const decoded = rheaMessage.decode(
      rheaMessage.encode(
        encodeEvent({ ...event, messageId: undefined, userId: undefined, properties: {} }),
      ),
    );
    expect(decoded.message_id).toBeUndefined();
    expect(decoded.user_id).toBeUndefined();
    expect(decoded.application_properties).toBeUndefined();
  });
}
