/**
 * The fast event writer (emulator/events/event-writer.ts) against the reference encoding.
 */
import { message as rheaMessage } from 'rhea';
import type { StoredEvent } from '../../core/contracts';
import { encodeEvent, runtimeMetricAnnotations } from '../../events/event-encoding';
import { writeEventMessage } from '../../events/event-writer';
import { AmqpReader, input } from '../support/amqp-sections';

/** Every section decoded to key → [AMQP type, value], from encoded message bytes. */
function typedSections(bytes: Buffer): unknown[] {
  const reader = new AmqpReader(bytes);
  const out: unknown[] = [];
  while (reader.remaining()) {
    const section = reader.read() as {
      descriptor: { value: unknown };
      type: { name: string };
      value: unknown;
    };
    const value = section.value;
    out.push([
      section.descriptor.value,
      section.type.name,
      Array.isArray(value)
        ? value.map((v: { type: { name: string }; value: unknown }) => [
            v.type.name.replace(/^Small(Long)$/, '$1'),
            v.value,
          ])
        : value,
    ]);
  }
  // rhea always writes (empty) header and properties sections; the writer leaves them out.
  return out.filter((s) => {
    const [, type, value] = s as [unknown, string, unknown];
    return !(type === 'List0' || (Array.isArray(value) && value.length === 0));
  });
}

/** An event with every field set, long strings, a long body and a sequence number past 2^32. */
const base: StoredEvent = {
  ...input('device-é', {
    body: Buffer.alloc(300, 7),
    properties: { alert: 'high', 'a b': 'c&d', long: 'x'.repeat(300) },
    messageId: 'm1',
    correlationId: 'c1',
    userId: 'u1',
    to: '/devices/device-é/messages/events',
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    expiryTime: Date.UTC(2030, 0, 1),
  }),
  authMethod: 'm'.repeat(400),
  partitionId: '0',
  sequenceNumber: 2 ** 40 + 3,
  offset: String(2 ** 40 + 3),
  enqueuedTime: Date.UTC(2025, 5, 1, 12, 0, 0, 123),
};

describe('fast event writer', () => {
  test.each([
    ['every field set, long strings and body', base, false],
    ['with runtime metrics', base, true],
    [
      'only required fields',
      { ...input('d'), partitionId: '1', sequenceNumber: 0, offset: '0', enqueuedTime: 0 },
      false,
    ],
    [
      'a correlation id only',
      {
        ...input('d', { correlationId: 'c' }),
        partitionId: '1',
        sequenceNumber: 7,
        offset: '7',
        enqueuedTime: 1,
      },
      true,
    ],
  ])('%s: same message and types as the reference encoding', (_name, event, withMetrics) => {
    const info = {
      partitionId: event.partitionId,
      beginSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 2 ** 41,
      lastEnqueuedOffset: String(2 ** 41),
      lastEnqueuedTime: Date.UTC(2025, 0, 1),
      isEmpty: false,
    };
    const reference = encodeEvent(event);
    if (withMetrics) reference.delivery_annotations = runtimeMetricAnnotations(info, 99);
    const fast = writeEventMessage(event, withMetrics ? { info, now: 99 } : undefined);
    const expected = rheaMessage.encode(reference);
    expect(JSON.stringify(rheaMessage.decode(fast))).toBe(
      JSON.stringify(rheaMessage.decode(expected)),
    );
    expect(typedSections(fast)).toEqual(typedSections(expected));
  });

  test('negative longs (an empty partition reports -1) round-trip', () => {
    const bytes = writeEventMessage(base, {
      info: {
        partitionId: '0',
        beginSequenceNumber: -1,
        lastEnqueuedSequenceNumber: -1,
        lastEnqueuedOffset: '-1',
        lastEnqueuedTime: 0,
        isEmpty: true,
      },
      now: 1,
    });
    expect(rheaMessage.decode(bytes).delivery_annotations).toMatchObject({
      last_enqueued_sequence_number: -1,
    });
  });
});
