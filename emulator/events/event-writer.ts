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

  /** Bytes encoded beforehand (constant keys and values). */
  raw(bytes: Buffer): void {
    this.ensure(bytes.length);
    bytes.copy(this.buffer, this.position);
    this.position += bytes.length;
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

/**
 * The annotation keys are the same symbols in every message: encoded once (sym8, as `symbol`
 * writes them) and copied, instead of measured and UTF-8-encoded per event and key.
 */
function encodedSymbol(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  return Buffer.concat([Buffer.from([codes.sym8, bytes.length]), bytes]);
}

const keys = {
  lastSequenceNumber: encodedSymbol('last_enqueued_sequence_number'),
  lastOffset: encodedSymbol('last_enqueued_offset'),
  lastTime: encodedSymbol('last_enqueued_time_utc'),
  retrievalTime: encodedSymbol('runtime_info_retrieval_time_utc'),
  sequenceNumber: encodedSymbol(annotationNames.sequenceNumber),
  offset: encodedSymbol(annotationNames.offset),
  enqueuedTime: encodedSymbol(annotationNames.enqueuedTime),
  deviceId: encodedSymbol(annotationNames.deviceId),
  authMethod: encodedSymbol(annotationNames.authMethod),
  authGenerationId: encodedSymbol(annotationNames.authGenerationId),
  iothubEnqueuedTime: encodedSymbol(annotationNames.iothubEnqueuedTime),
  messageSource: encodedSymbol(annotationNames.messageSource),
};

/** str8 'Telemetry', the message source of every event. */
const telemetrySource = Buffer.concat([Buffer.from([codes.str8, 9]), Buffer.from('Telemetry')]);

/** The runtime metrics as delivery annotations (receivers that asked for them). */
function writeRuntimeMetrics(writer: ByteWriter, info: PartitionInfo, now: number): void {
  writer.sectionHeader(sections.deliveryAnnotations);
  const map = writer.beginCompound(codes.map32);
  writer.raw(keys.lastSequenceNumber);
  writer.long(info.lastEnqueuedSequenceNumber);
  writer.raw(keys.lastOffset);
  writer.string(info.lastEnqueuedOffset);
  writer.raw(keys.lastTime);
  writer.timestamp(info.lastEnqueuedTime);
  writer.raw(keys.retrievalTime);
  writer.timestamp(now);
  writer.endCompound(map, 8);
}

/** The event's system properties, as IoT Hub annotates a routed telemetry message. */
function writeMessageAnnotations(writer: ByteWriter, event: StoredEvent): void {
  writer.sectionHeader(sections.messageAnnotations);
  const map = writer.beginCompound(codes.map32);
  writer.raw(keys.sequenceNumber);
  writer.long(event.sequenceNumber);
  writer.raw(keys.offset);
  writer.string(event.offset);
  writer.raw(keys.enqueuedTime);
  writer.timestamp(event.enqueuedTime);
  writer.raw(keys.deviceId);
  writer.string(event.deviceId);
  writer.raw(keys.authMethod);
  writer.string(event.authMethod);
  writer.raw(keys.authGenerationId);
  writer.string(event.generationId);
  writer.raw(keys.iothubEnqueuedTime);
  writer.timestamp(event.enqueuedTime);
  writer.raw(keys.messageSource);
  writer.raw(telemetrySource);
  writer.endCompound(map, 16);
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
  if (metrics) writeRuntimeMetrics(writer, metrics.info, metrics.now);
  writeMessageAnnotations(writer, event);
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
