/**
 * The hot path of the endpoint: a stored event straight to the AMQP 1.0 bytes of a message
 * (`Sender.send(bytes, tag, 0)`). rhea's generic encoder builds a typed object per value and a
 * buffer per string, which made encoding the endpoint's largest cost; this writes the same
 * sections, with the same explicit types as `encodeEvent` (event-encoding.ts), into one buffer.
 * The unit tests decode both with rhea and require identical messages and types.
 */
import type { PartitionInfo, StoredEvent } from '../core/contracts';
import { annotationNames } from './event-encoding';

const codes = {
  described: 0x00,
  smallUlong: 0x53,
  null: 0x40,
  long: 0x81,
  timestamp: 0x83,
  vbin8: 0xa0,
  vbin32: 0xb0,
  str8: 0xa1,
  str32: 0xb1,
  sym8: 0xa3,
  sym32: 0xb3,
  list32: 0xd0,
  map32: 0xd1,
} as const;

const sections = {
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
} as const;

class ByteWriter {
  private buffer: Buffer;
  position = 0;

  constructor(initialSize: number) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  private ensure(extra: number): void {
    if (this.position + extra <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.position + extra));
    this.buffer.copy(bigger, 0, 0, this.position);
    this.buffer = bigger;
  }

  byte(value: number): void {
    this.ensure(1);
    this.buffer[this.position++] = value;
  }

  uint32At(offset: number, value: number): void {
    this.buffer.writeUInt32BE(value, offset);
  }

  reserve32(): number {
    this.ensure(4);
    const at = this.position;
    this.position += 4;
    return at;
  }

  /** Two's complement 64-bit, for safe integers (sequence numbers, ms timestamps). */
  int64(value: number): void {
    this.ensure(8);
    const whole = Math.trunc(value);
    const high = Math.floor(whole / 0x1_0000_0000);
    this.buffer.writeInt32BE(high, this.position);
    this.buffer.writeUInt32BE(whole - high * 0x1_0000_0000, this.position + 4);
    this.position += 8;
  }

  /** str8/str32 or sym8/sym32, by encoded length. */
  text(value: string, small: number, large: number): void {
    const length = Buffer.byteLength(value, 'utf8');
    if (length <= 255) {
      this.ensure(2 + length);
      this.buffer[this.position++] = small;
      this.buffer[this.position++] = length;
    } else {
      this.ensure(5 + length);
      this.buffer[this.position++] = large;
      this.buffer.writeUInt32BE(length, this.position);
      this.position += 4;
    }
    this.position += this.buffer.write(value, this.position, 'utf8');
  }

  binary(value: Buffer): void {
    if (value.length <= 255) {
      this.ensure(2 + value.length);
      this.buffer[this.position++] = codes.vbin8;
      this.buffer[this.position++] = value.length;
    } else {
      this.ensure(5 + value.length);
      this.buffer[this.position++] = codes.vbin32;
      this.buffer.writeUInt32BE(value.length, this.position);
      this.position += 4;
    }
    value.copy(this.buffer, this.position);
    this.position += value.length;
  }

  string(value: string): void {
    this.text(value, codes.str8, codes.str32);
  }

  symbol(value: string): void {
    this.text(value, codes.sym8, codes.sym32);
  }

  long(value: number): void {
    this.byte(codes.long);
    this.int64(value);
  }

  timestamp(ms: number): void {
    this.byte(codes.timestamp);
    this.int64(ms);
  }

  sectionHeader(code: number): void {
    this.ensure(3);
    this.buffer[this.position++] = codes.described;
    this.buffer[this.position++] = codes.smallUlong;
    this.buffer[this.position++] = code;
  }

  /** A map32 or list32 whose size and count are filled in by `end`. */
  beginCompound(code: number): { sizeAt: number; start: number } {
    this.byte(code);
    const sizeAt = this.reserve32();
    const start = this.position;
    this.reserve32();
    return { sizeAt, start };
  }

  endCompound(compound: { sizeAt: number; start: number }, count: number): void {
    this.uint32At(compound.sizeAt, this.position - compound.start);
    this.uint32At(compound.start, count);
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.position);
  }
}

type AnnotationValue =
  | { kind: 'long'; value: number }
  | { kind: 'timestamp'; value: number }
  | { kind: 'string'; value: string };

function writeAnnotationMap(
  writer: ByteWriter,
  section: number,
  entries: ReadonlyArray<[string, AnnotationValue]>,
): void {
  writer.sectionHeader(section);
  const map = writer.beginCompound(codes.map32);
  for (const [key, value] of entries) {
    writer.symbol(key);
    if (value.kind === 'long') writer.long(value.value);
    else if (value.kind === 'timestamp') writer.timestamp(value.value);
    else writer.string(value.value);
  }
  writer.endCompound(map, entries.length * 2);
}

/** The `properties` section: only as many of its 13 fields as the last one set. */
function writeProperties(writer: ByteWriter, event: StoredEvent): void {
  type Field = ((w: ByteWriter) => void) | undefined;
  const fields: Field[] = [
    event.messageId !== undefined ? (w) => w.string(event.messageId!) : undefined,
    event.userId !== undefined ? (w) => w.binary(Buffer.from(event.userId!, 'utf8')) : undefined,
    event.to !== undefined ? (w) => w.string(event.to!) : undefined,
    undefined, // subject
    undefined, // reply-to
    event.correlationId !== undefined ? (w) => w.string(event.correlationId!) : undefined,
    event.contentType !== undefined ? (w) => w.symbol(event.contentType!) : undefined,
    event.contentEncoding !== undefined ? (w) => w.symbol(event.contentEncoding!) : undefined,
    event.expiryTime !== undefined ? (w) => w.timestamp(event.expiryTime!) : undefined,
  ];
  let count = fields.length;
  while (count > 0 && fields[count - 1] === undefined) count--;
  if (count === 0) return;
  writer.sectionHeader(sections.properties);
  const list = writer.beginCompound(codes.list32);
  for (let i = 0; i < count; i++) {
    const field = fields[i];
    if (field) field(writer);
    else writer.byte(codes.null);
  }
  writer.endCompound(list, count);
}

/** The AMQP message for an event, optionally with runtime-metric delivery annotations. */
export function writeEventMessage(
  event: StoredEvent,
  metrics?: { info: PartitionInfo; now: number },
): Buffer {
  const writer = new ByteWriter(512 + event.body.length);
  if (metrics) {
    writeAnnotationMap(writer, sections.deliveryAnnotations, [
      [
        'last_enqueued_sequence_number',
        { kind: 'long', value: metrics.info.lastEnqueuedSequenceNumber },
      ],
      ['last_enqueued_offset', { kind: 'string', value: metrics.info.lastEnqueuedOffset }],
      ['last_enqueued_time_utc', { kind: 'timestamp', value: metrics.info.lastEnqueuedTime }],
      ['runtime_info_retrieval_time_utc', { kind: 'timestamp', value: metrics.now }],
    ]);
  }
  writeAnnotationMap(writer, sections.messageAnnotations, [
    [annotationNames.sequenceNumber, { kind: 'long', value: event.sequenceNumber }],
    [annotationNames.offset, { kind: 'string', value: event.offset }],
    [annotationNames.enqueuedTime, { kind: 'timestamp', value: event.enqueuedTime }],
    [annotationNames.deviceId, { kind: 'string', value: event.deviceId }],
    [annotationNames.authMethod, { kind: 'string', value: event.authMethod }],
    [annotationNames.authGenerationId, { kind: 'string', value: event.generationId }],
    [annotationNames.iothubEnqueuedTime, { kind: 'timestamp', value: event.enqueuedTime }],
    [annotationNames.messageSource, { kind: 'string', value: 'Telemetry' }],
  ]);
  writeProperties(writer, event);
  const properties = Object.entries(event.properties);
  if (properties.length > 0) {
    writer.sectionHeader(sections.applicationProperties);
    const map = writer.beginCompound(codes.map32);
    for (const [key, value] of properties) {
      writer.string(key);
      writer.string(value);
    }
    writer.endCompound(map, properties.length * 2);
  }
  writer.sectionHeader(sections.data);
  writer.binary(event.body);
  return writer.toBuffer();
}
