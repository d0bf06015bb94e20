import { BatchMetadata, timeMs } from '../../../../lib/telemetry/event-metadata';
import { decodeBody } from '../../../../lib/telemetry/decode';
import { processEvent } from '../../../../lib/telemetry/process-event';
import { validateReading } from '../../../../lib/telemetry/schema';
import { sampleBatch, type SampleEvent } from '../../../../lib/telemetry/sample-events';

const json = { deviceId: 'spoofed', windSpeed: 12.5, temperature: 21, label: 'x' };
const jsonText = JSON.stringify(json);
const limits = { deadLetterMaxBodyBytes: 16 };
const start = new Date('2026-11-23T08:00:00.000Z');

function event(overrides: Partial<SampleEvent> & { body: unknown }): SampleEvent {
  return {
    deviceId: 'device-1',
    messageId: 'm-1',
    correlationId: 'c-1',
    sequenceNumber: 42,
    enqueuedTime: start,
    properties: { property: 'p' },
    ...overrides,
  };
}

function processOne(e: SampleEvent) {
  const batch = sampleBatch([e], '3');
  const meta = new BatchMetadata(batch.triggerMetadata, 1).forEvent(0);
  return processEvent(batch.messages[0], meta, limits);
}

describe('decodeBody', () => {
  it.each([
    ['UTF-8 bytes', Buffer.from(jsonText, 'utf8'), 'application/json', 'utf-8'],
    ['a Uint8Array', new Uint8Array(Buffer.from(jsonText)), undefined, undefined],
    ['an ArrayBuffer', new Uint8Array(Buffer.from(jsonText)).buffer, undefined, undefined],
    ['text', jsonText, 'application/json', undefined],
    ['an already-parsed object', json, undefined, undefined],
    ['UTF-16 bytes', Buffer.from(jsonText, 'utf16le'), 'application/json', 'utf-16'],
    [
      'a charset in the content type',
      Buffer.from(jsonText, 'utf16le'),
      'application/json; charset=utf-16le',
      undefined,
    ],
    [
      'bytes with a BOM',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(jsonText)]),
      undefined,
      undefined,
    ],
    [
      'base64 bytes (content encoding)',
      Buffer.from(Buffer.from(jsonText).toString('base64')),
      'application/json',
      'base64',
    ],
    [
      'base64 text (content encoding)',
      Buffer.from(jsonText).toString('base64'),
      undefined,
      'base64',
    ],
    [
      'base64 bytes (shape only)',
      Buffer.from(Buffer.from(jsonText).toString('base64')),
      undefined,
      undefined,
    ],
    [
      'a JSON string holding base64',
      JSON.stringify(Buffer.from(jsonText).toString('base64')),
      undefined,
      undefined,
    ],
    [
      'a serialized Buffer',
      JSON.parse(JSON.stringify(Buffer.from(jsonText))) as unknown,
      undefined,
      undefined,
    ],
  ])('decodes %s', (_name, body, contentType, contentEncoding) => {
    const result = decodeBody(body, contentType, contentEncoding);
    expect(result).toMatchObject({ ok: true, value: json });
  });

  it('marks base64 bodies', () => {
    expect(decodeBody(Buffer.from(jsonText).toString('base64'), undefined, 'base64')).toMatchObject(
      {
        ok: true,
        base64: true,
      },
    );
    expect(decodeBody(Buffer.from(jsonText), undefined, undefined)).toMatchObject({
      ok: true,
      base64: false,
    });
  });

  it.each([
    ['non-JSON text', Buffer.from('wind is strong'), undefined, 'not-json'],
    ['an empty body', Buffer.alloc(0), undefined, 'empty-body'],
    ['whitespace', '   ', undefined, 'empty-body'],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), undefined, 'invalid-text'],
    ['invalid base64', Buffer.from('not base64!!'), 'base64', 'invalid-base64'],
    ['an unknown encoding', Buffer.from(jsonText), 'gzip', 'unsupported-encoding'],
  ])('rejects %s', (_name, body, encoding, reason) => {
    expect(decodeBody(body, undefined, encoding)).toMatchObject({ ok: false, reason });
  });

  it('does not take words that happen to be base64-shaped for base64', () => {
    // "abcd" is valid base64 but does not decode to JSON.
    expect(decodeBody(Buffer.from('abcd'), undefined, undefined)).toMatchObject({
      ok: false,
      reason: 'not-json',
    });
  });
});

describe('validateReading', () => {
  it('keeps numeric fields and drops the rest, including the body deviceId', () => {
    expect(validateReading(json)).toEqual({
      ok: true,
      reading: { windSpeed: 12.5, temperature: 21 },
    });
  });

  it('drops numeric fields that would shadow the enrichment', () => {
    const result = validateReading({ windSpeed: 1, sequenceNumber: 7, partition: 2 });
    expect(result).toEqual({ ok: true, reading: { windSpeed: 1 } });
  });

  it.each([
    ['a missing windSpeed', { speed: 3 }],
    ['a string windSpeed', { windSpeed: '12' }],
    ['a null windSpeed', { windSpeed: null }],
    ['an array', [{ windSpeed: 1 }]],
    ['a number', 12],
    ['an infinite windSpeed', JSON.parse('{"windSpeed":1e999}') as unknown],
  ])('rejects %s', (_name, value) => {
    expect(validateReading(value)).toMatchObject({ ok: false });
  });

  it('rejects too many numeric fields', () => {
    const body: Record<string, number> = { windSpeed: 1 };
    for (let i = 0; i < 70; i += 1) body[`f${i}`] = i;
    expect(validateReading(body)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('64'),
    });
  });
});

describe('processEvent', () => {
  it('enriches a reading from the trusted system properties, not the body', () => {
    const result = processOne(
      event({
        body: Buffer.from(jsonText),
        contentType: 'application/json',
        contentEncoding: 'utf-8',
      }),
    );
    expect(result.kind).toBe('reading');
    if (result.kind !== 'reading') return;
    expect(result.record).toMatchObject({
      deviceId: 'device-1',
      reading: { windSpeed: 12.5, temperature: 21 },
      messageId: 'm-1',
      correlationId: 'c-1',
      enqueuedMs: start.getTime(),
      partition: '3',
      sequenceNumber: 42n,
      offset: String(42 * 512),
      properties: { property: 'p' },
      contentType: 'application/json',
    });
  });

  it('dead-letters an event without a device id, whatever the body claims', () => {
    const result = processOne(event({ deviceId: undefined, body: Buffer.from(jsonText) }));
    expect(result).toMatchObject({
      kind: 'deadLetter',
      letter: { reason: 'missing-device-id', deviceId: undefined, bodySize: jsonText.length },
    });
  });

  it('dead-letters wrong types with the raw body bounded', () => {
    const body = JSON.stringify({ windSpeed: 'fast', padding: 'x'.repeat(100) });
    const result = processOne(event({ body: Buffer.from(body) }));
    expect(result.kind).toBe('deadLetter');
    if (result.kind !== 'deadLetter') return;
    expect(result.letter.reason).toBe('invalid-reading');
    expect(result.letter.detail).toContain('windSpeed');
    expect(result.letter.body.toString()).toBe(body.slice(0, 16));
    expect(result.letter.bodySize).toBe(body.length);
    expect(result.letter.systemProperties['iothub-connection-device-id']).toBe('device-1');
  });

  it('dead-letters non-JSON bodies', () => {
    expect(processOne(event({ body: Buffer.from('hello') }))).toMatchObject({
      kind: 'deadLetter',
      letter: { reason: 'not-json' },
    });
  });

  it('dead-letters an invalid device id', () => {
    expect(processOne(event({ deviceId: 'bad/id', body: Buffer.from(jsonText) }))).toMatchObject({
      kind: 'deadLetter',
      letter: { reason: 'invalid-device-id' },
    });
  });
});

describe('BatchMetadata', () => {
  it('reads @azure/event-hubs-style names and numeric times too', () => {
    const meta = new BatchMetadata(
      {
        partitionContext: { partitionId: '1' },
        systemPropertiesArray: [
          {
            'iothub-connection-device-id': 'd',
            messageId: 'm',
            correlationId: 'c',
            contentType: 'application/json',
            'x-opt-sequence-number': 9,
            'x-opt-enqueued-time': start.getTime(),
          },
        ],
      },
      1,
    ).forEvent(0);
    expect(meta).toMatchObject({
      deviceId: 'd',
      messageId: 'm',
      correlationId: 'c',
      contentType: 'application/json',
      sequenceNumber: 9n,
      enqueuedMs: start.getTime(),
      partition: '1',
    });
  });

  it('treats .NET times without a zone as UTC and reads PascalCase keys', () => {
    const meta = new BatchMetadata(
      {
        PartitionContext: { PartitionId: '2' },
        SystemPropertiesArray: [
          {
            'iothub-connection-device-id': 'd',
            SequenceNumber: 5,
            EnqueuedTimeUtc: '2026-11-23T08:00:00.000',
          },
        ],
      },
      1,
    ).forEvent(0);
    expect(meta.enqueuedMs).toBe(start.getTime());
    expect(meta.sequenceNumber).toBe(5n);
  });

  it('ignores parallel arrays that no longer line up with the batch', () => {
    const meta = new BatchMetadata(
      { systemPropertiesArray: [{}], enqueuedTimeUtcArray: [], sequenceNumberArray: [1] },
      2,
    ).forEvent(1);
    expect(meta.deviceId).toBeUndefined();
    expect(meta.sequenceNumber).toBeUndefined();
    expect(meta.enqueuedMs).toBeUndefined();
  });
});

describe('timeMs', () => {
  it('agrees with Date.parse on ISO UTC times with 0 to 7 fraction digits', () => {
    const base = Date.parse('2026-11-23T08:00:00.000Z');
    for (let i = 0; i < 2000; i += 1) {
      // Steps that cross seconds, minutes, hours and days (exercising the per-minute cache).
      const iso = new Date(base + i * 7_919_371).toISOString();
      for (const text of [
        iso,
        iso.replace(/\.\d+Z$/, 'Z'),
        iso.replace(/\d\dZ$/, 'Z'),
        iso.replace(/Z$/, '1234Z'),
      ]) {
        expect(timeMs(text)).toBe(Date.parse(text));
      }
    }
  });

  it('rejects impossible fields and accepts other forms', () => {
    expect(timeMs('2026-11-23T08:00:61Z')).toBeUndefined();
    expect(timeMs('2026-13-23T08:00:00Z')).toBeUndefined();
    expect(timeMs('2026-11-23T09:00:00+01:00')).toBe(Date.parse('2026-11-23T08:00:00Z'));
    expect(timeMs(new Date(5))).toBe(5);
    expect(timeMs(7)).toBe(7);
    expect(timeMs('soon')).toBeUndefined();
  });
});
