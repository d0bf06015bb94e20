/**
 * Event Hub events → the trigger input and trigger metadata the host sends a Node worker.
 *
 * Input (`cardinality: 'many'`): without `dataType` one JSON array of the parsed bodies (a body
 * that is not JSON fails the invocation, as with the real host); `dataType: 'string'` →
 * `collectionString`; `'binary'` → `collectionBytes`. With `cardinality: 'one'`: a string, or bytes
 * for `'binary'`.
 *
 * Metadata keys as the host's Event Hubs extension names them (`PartitionContext`,
 * `SystemPropertiesArray`, ...). `string[]` and `long[]` values travel as typed collections (the
 * worker announces `TypedDataCollection`), so empty entries drop out of `PartitionKeyArray`;
 * everything else is JSON. The library camel-cases keys on the way in.
 */
import { randomUUID } from 'node:crypto';
import type { ReceivedEventData } from '@azure/event-hubs';
import type { RpcTypedData } from '../rpc-types';

export type Cardinality = 'many' | 'one';
export type EventDataType = 'string' | 'binary' | undefined;

export interface PartitionInfo {
  fullyQualifiedNamespace: string;
  eventHubName: string;
  consumerGroup: string;
  partitionId: string;
}

export class EventConversionError extends Error {
  override name = 'EventConversionError';
}

/** AMQP property section names as the .NET client reports them in `SystemProperties`. */
const amqpPropertyNames: Record<string, string> = {
  messageId: 'message-id',
  userId: 'user-id',
  to: 'to',
  subject: 'subject',
  replyTo: 'reply-to',
  correlationId: 'correlation-id',
  contentType: 'content-type',
  contentEncoding: 'content-encoding',
  absoluteExpiryTime: 'absolute-expiry-time',
  creationTime: 'creation-time',
  groupId: 'group-id',
  groupSequence: 'group-sequence',
  replyToGroupId: 'reply-to-group-id',
};

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** AMQP values → what JSON serialization of the .NET values gives. */
function plainValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value))
    return value.length === 16 ? formatUuid(value) : value.toString('base64');
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plainValue);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plainValue(v);
    return out;
  }
  return value;
}

/** The raw body bytes of an event (received with `skipParsingBodyAsJson`). */
export function eventBodyBytes(event: Pick<ReceivedEventData, 'body'>): Buffer {
  const body: unknown = event.body;
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body === undefined || body === null) return Buffer.alloc(0);
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function systemPropertiesOf(event: ReceivedEventData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const raw = event.getRawAmqpMessage();
  for (const [key, value] of Object.entries(raw.messageAnnotations ?? {}))
    out[key] = plainValue(value);
  for (const [key, value] of Object.entries(raw.properties ?? {})) {
    const name = amqpPropertyNames[key];
    if (name && value !== undefined && value !== null) out[name] = plainValue(value);
  }
  out.SequenceNumber = event.sequenceNumber;
  out.Offset = String(event.offset);
  out.PartitionKey = event.partitionKey ?? null;
  out.EnqueuedTimeUtc = event.enqueuedTimeUtc.toISOString();
  return out;
}

function propertiesOf(event: ReceivedEventData): Record<string, unknown> {
  return plainValue(event.properties ?? {}) as Record<string, unknown>;
}

function json(value: unknown): RpcTypedData {
  return { json: JSON.stringify(value) };
}

function stringCollection(values: (string | null | undefined)[]): RpcTypedData {
  return {
    collectionString: {
      string: values.filter((v): v is string => typeof v === 'string' && v.length > 0),
    },
  };
}

export interface EventHubInvocationData {
  input: RpcTypedData;
  triggerMetadata: Record<string, RpcTypedData>;
}

function inputFor(
  events: readonly ReceivedEventData[],
  cardinality: Cardinality,
  dataType: EventDataType,
): RpcTypedData {
  const bodies = events.map(eventBodyBytes);
  if (cardinality === 'one') {
    const body = bodies[0] ?? Buffer.alloc(0);
    return dataType === 'binary' ? { bytes: body } : { string: body.toString('utf8') };
  }
  if (dataType === 'binary') return { collectionBytes: { bytes: bodies } };
  if (dataType === 'string') return stringCollection(bodies.map((b) => b.toString('utf8')));
  const parsed = bodies.map((body, index) => {
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      const sequence = events[index]?.sequenceNumber;
      throw new EventConversionError(
        `Exception binding parameter: event ${index} (sequence number ${String(sequence)}) is not JSON; ` +
          `set dataType: 'string' or 'binary' on the trigger to receive any body`,
      );
    }
  });
  return json(parsed);
}

export function toEventHubInvocationData(
  events: readonly ReceivedEventData[],
  options: {
    cardinality: Cardinality;
    dataType: EventDataType;
    functionName: string;
    partition: PartitionInfo;
  },
): EventHubInvocationData {
  const { partition } = options;
  const triggerMetadata: Record<string, RpcTypedData> = {
    PartitionContext: json({
      FullyQualifiedNamespace: partition.fullyQualifiedNamespace,
      EventHubName: partition.eventHubName,
      ConsumerGroup: partition.consumerGroup,
      PartitionId: partition.partitionId,
    }),
    sys: json({
      MethodName: options.functionName,
      UtcNow: new Date().toISOString(),
      RandGuid: randomUUID(),
    }),
  };
  if (options.cardinality === 'one') {
    const event = events[0];
    if (!event) throw new EventConversionError('no event to convert');
    if (event.partitionKey) triggerMetadata.PartitionKey = { string: event.partitionKey };
    triggerMetadata.Offset = { string: String(event.offset) };
    triggerMetadata.SequenceNumber = json(event.sequenceNumber);
    triggerMetadata.EnqueuedTimeUtc = json(event.enqueuedTimeUtc.toISOString());
    triggerMetadata.Properties = json(propertiesOf(event));
    triggerMetadata.SystemProperties = json(systemPropertiesOf(event));
  } else {
    triggerMetadata.PartitionKeyArray = stringCollection(events.map((e) => e.partitionKey));
    triggerMetadata.OffsetArray = stringCollection(events.map((e) => String(e.offset)));
    triggerMetadata.SequenceNumberArray = {
      collectionSint64: { sint64: events.map((e) => e.sequenceNumber) },
    };
    triggerMetadata.EnqueuedTimeUtcArray = json(events.map((e) => e.enqueuedTimeUtc.toISOString()));
    triggerMetadata.PropertiesArray = json(events.map(propertiesOf));
    triggerMetadata.SystemPropertiesArray = json(events.map(systemPropertiesOf));
  }
  return { input: inputFor(events, options.cardinality, options.dataType), triggerMetadata };
}
