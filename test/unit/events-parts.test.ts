/**
 * The Event Hub-compatible endpoint's pure parts: start filters, addresses, event encoding (with
 * the exact AMQP types the .NET client casts to), CBS and `$management` replies, epochs.
 */
import { createHmac } from 'node:crypto';
import { message as rheaMessage, types, type Message } from 'rhea';
import { wellKnownHubIdentity } from '../../emulator/config';
import { FakeClock } from '../../emulator/core/clock';
import type { StoredEvent, TelemetryInput } from '../../emulator/core/contracts';
import { createCore } from '../../emulator/core/create-core';
import { ClaimSet, handlePutToken } from '../../emulator/events/cbs';
import {
  isCbsNode,
  isManagementNode,
  parsePartitionAddress,
} from '../../emulator/events/entity-address';
import { encodeEvent, runtimeMetricAnnotations } from '../../emulator/events/event-encoding';
import { writeEventMessage } from '../../emulator/events/event-writer';
import { FrameSizeGuard } from '../../emulator/events/frame-guard';
import { handleManagementRequest } from '../../emulator/events/management';
import { PartitionOwnership, type OwnedReader } from '../../emulator/events/ownership';
import {
  InvalidFilterError,
  parseSelector,
  resolveStartSequenceNumber,
  startPositionFromFilter,
} from '../../emulator/events/start-position';

const identity = wellKnownHubIdentity;
const serviceKey = identity.policies.find((p) => p.name === 'service')!.primaryKey;
const host = 'localhost:5672';

interface TypedEntry {
  type: string;
  value: unknown;
  elementCode?: number;
}

/** Decodes an encoded message's map section into key → AMQP type name and value. */
/** rhea's decoder; its typings leave the Reader class out. */
const AmqpReader = (
  types as unknown as { Reader: new (buffer: Buffer) => { remaining(): number; read(): unknown } }
).Reader;

function mapSection(message: Message, code: number): Map<string, TypedEntry> {
  const reader = new AmqpReader(rheaMessage.encode(message));
  while (reader.remaining()) {
    const section = reader.read() as {
      descriptor: { value: unknown };
      value: Array<{
        type: { name: string };
        value: unknown;
        array_constructor?: { typecode: number };
      }>;
    };
    if (section.descriptor.value !== code) continue;
    const entries = new Map<string, TypedEntry>();
    for (let i = 0; i + 1 < section.value.length; i += 2) {
      const key = section.value[i]!;
      const value = section.value[i + 1]!;
      entries.set(String(key.value), {
        type: value.type.name,
        value: value.value,
        ...(value.array_constructor ? { elementCode: value.array_constructor.typecode } : {}),
      });
    }
    return entries;
  }
  throw new Error(`no section 0x${code.toString(16)}`);
}

const messageAnnotations = 0x72;
const deliveryAnnotations = 0x71;
const applicationProperties = 0x74;
const amqpValue = 0x77;

function sasToken(
  audience: string,
  key = serviceKey,
  expiresInSeconds = 3600,
  now = Date.now(),
): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(now / 1000) + expiresInSeconds;
  const sig = createHmac('sha256', Buffer.from(key, 'utf8'))
    .update(`${sr}\n${se}`)
    .digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=service`;
}

function input(deviceId: string, extra: Partial<TelemetryInput> = {}): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from('{}'),
    properties: {},
    generationId: 'gen-1',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    ...extra,
  };
}

describe('start filters', () => {
  test.each([
    ["amqp.annotation.x-opt-offset > '-1'", { kind: 'earliest' }],
    ["amqp.annotation.x-opt-offset > '@latest'", { kind: 'latest' }],
    ["  AMQP.ANNOTATION.X-OPT-OFFSET >= '12'  ", { kind: 'offset', offset: 12n, inclusive: true }],
    ["amqp.annotation.x-opt-offset>'7'", { kind: 'offset', offset: 7n, inclusive: false }],
    [
      "amqp.annotation.x-opt-sequence-number > '41'",
      { kind: 'sequenceNumber', sequenceNumber: 41, inclusive: false },
    ],
    [
      "amqp.annotation.x-opt-sequence-number >= '0'",
      { kind: 'sequenceNumber', sequenceNumber: 0, inclusive: true },
    ],
    [
      "amqp.annotation.x-opt-enqueued-time > '1700000000000'",
      { kind: 'enqueuedTime', time: 1700000000000, inclusive: false },
    ],
    [
      "amqp.annotation.x-opt-enqueued-time >= '2024-01-01T00:00:00Z'",
      { kind: 'enqueuedTime', time: Date.UTC(2024, 0, 1), inclusive: true },
    ],
  ])('%s', (text, expected) => {
    expect(parseSelector(text)).toEqual(expected);
  });

  test.each([
    "amqp.annotation.x-opt-offset > 'banana'",
    "amqp.annotation.x-opt-offset < '5'",
    "amqp.annotation.x-opt-sequence-number > '1.5'",
    "amqp.annotation.x-opt-sequence-number > '99999999999999999999'",
    "amqp.annotation.x-opt-enqueued-time > 'yesterday'",
    "amqp.annotation.x-opt-partition-key > 'a'",
    "amqp.annotation.x-opt-offset > '1' OR 1=1",
    '',
  ])('rejects %j', (text) => {
    expect(() => parseSelector(text)).toThrow(InvalidFilterError);
  });

  test('reads the selector from a filter set (symbol or numeric descriptor); no filter is earliest', () => {
    const text = "amqp.annotation.x-opt-sequence-number > '3'";
    const expected = { kind: 'sequenceNumber', sequenceNumber: 3, inclusive: false };
    expect(
      startPositionFromFilter({
        'apache.org:selector-filter:string': {
          descriptor: 'apache.org:selector-filter:string',
          value: text,
        },
      }),
    ).toEqual(expected);
    expect(
      startPositionFromFilter({
        'apache.org:selector-filter:string': { descriptor: { value: 0x468c00000004 }, value: text },
      }),
    ).toEqual(expected);
    expect(startPositionFromFilter({ 'apache.org:selector-filter:string': text })).toEqual(
      expected,
    );
    expect(startPositionFromFilter(undefined)).toEqual({ kind: 'earliest' });
    expect(startPositionFromFilter({ 'some:other-filter': 'x' })).toEqual({ kind: 'earliest' });
    expect(() => startPositionFromFilter('not a map')).toThrow(InvalidFilterError);
    expect(() =>
      startPositionFromFilter({
        'apache.org:selector-filter:string': { descriptor: 'wrong', value: text },
      }),
    ).toThrow(InvalidFilterError);
    expect(() => startPositionFromFilter({ 'apache.org:selector-filter:string': 42 })).toThrow(
      InvalidFilterError,
    );
  });

  test('resolves positions against a partition', async () => {
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    const core = await createCore({ clock, partitionCount: 1 });
    try {
      const { d2c } = core;
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'latest' })).toBe(0);
      const events: StoredEvent[] = [];
      for (let i = 0; i < 6; i++) {
        events.push(await d2c.append(input('d')));
        clock.advance(1000);
      }
      const t = (i: number) => events[i]!.enqueuedTime;
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'earliest' })).toBe(0);
      expect(resolveStartSequenceNumber(d2c, '0', { kind: 'latest' })).toBe(6);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: 2,
          inclusive: false,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: 2,
          inclusive: true,
        }),
      ).toBe(2);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'sequenceNumber',
          sequenceNumber: -1,
          inclusive: false,
        }),
      ).toBe(0);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'offset',
          offset: BigInt(events[3]!.offset),
          inclusive: false,
        }),
      ).toBe(4);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'offset',
          offset: BigInt(events[3]!.offset),
          inclusive: true,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', { kind: 'offset', offset: 10_000n, inclusive: false }),
      ).toBe(6);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'enqueuedTime',
          time: t(2),
          inclusive: false,
        }),
      ).toBe(3);
      expect(
        resolveStartSequenceNumber(d2c, '0', { kind: 'enqueuedTime', time: t(2), inclusive: true }),
      ).toBe(2);
      expect(
        resolveStartSequenceNumber(d2c, '0', {
          kind: 'enqueuedTime',
          time: t(5) + 1,
          inclusive: false,
        }),
      ).toBe(6);
    } finally {
      await core.close();
    }
  });
});

describe('addresses', () => {
  test.each([
    [
      'local-iothub/ConsumerGroups/$Default/Partitions/0',
      { hub: 'local-iothub', consumerGroup: '$Default', partitionId: '0' },
    ],
    [
      '/local-iothub/consumergroups/$default/partitions/3',
      { hub: 'local-iothub', consumerGroup: '$default', partitionId: '3' },
    ],
    [
      'amqp://localhost:5672/local-iothub/ConsumerGroups/cg%201/Partitions/1',
      { hub: 'local-iothub', consumerGroup: 'cg 1', partitionId: '1' },
    ],
  ])('%s', (address, expected) => {
    expect(parsePartitionAddress(address)).toEqual(expected);
  });

  test.each([
    'local-iothub',
    'local-iothub/Partitions/0',
    'local-iothub/ConsumerGroups/$Default/Partitions/',
    'a/b/c/d/e',
    '',
  ])('not a partition: %j', (address) => {
    expect(parsePartitionAddress(address)).toBeUndefined();
  });

  test('request/response nodes', () => {
    expect(isCbsNode('$cbs')).toBe(true);
    expect(isCbsNode('/$cbs')).toBe(true);
    expect(isManagementNode('$management')).toBe(true);
    expect(isManagementNode('local-iothub/$management')).toBe(true);
    expect(isManagementNode('local-iothub')).toBe(false);
  });
});

describe('event encoding', () => {
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
});

describe('$cbs put-token', () => {
  const audience = `sb://${host}/local-iothub/ConsumerGroups/$Default/Partitions/0`;
  const now = Date.now();

  function request(token: unknown, name = audience, extra: Record<string, unknown> = {}): Message {
    return {
      message_id: 'id-1',
      reply_to: 'cbs-reply',
      body: token,
      application_properties: {
        operation: 'put-token',
        name,
        type: 'servicebus.windows.net:sastoken',
        ...extra,
      },
    };
  }

  test('a valid token is granted for its audience and the reply is 200 as an AMQP int, correlated', () => {
    const claims = new ClaimSet();
    const outcome = handlePutToken(request(sasToken(audience)), identity, claims, now);
    expect(outcome.refusal).toBeUndefined();
    expect(outcome.reply.correlation_id).toBe('id-1');
    expect(outcome.reply.to).toBe('cbs-reply');
    const props = mapSection(outcome.reply, applicationProperties);
    expect(props.get('status-code')).toEqual({ type: 'Int', value: 200 });
    expect(claims.covers('local-iothub/ConsumerGroups/$default/Partitions/0', now)).toBe(true);
    expect(claims.covers('local-iothub/ConsumerGroups/$default/Partitions/1', now)).toBe(false);
    expect(claims.covers('local-iothub/ConsumerGroups/$default/Partitions/0', now + 7200_000)).toBe(
      false,
    );
  });

  test('a hub-wide token covers every partition of every group', () => {
    const claims = new ClaimSet();
    const hubAudience = `sb://${host}/local-iothub`;
    handlePutToken(request(sasToken(hubAudience), hubAudience), identity, claims, now);
    expect(claims.covers('/local-iothub/ConsumerGroups/other/Partitions/3', now)).toBe(true);
    expect(claims.covers('other-hub/ConsumerGroups/other/Partitions/3', now)).toBe(false);
  });

  test.each([
    ['a wrong key', () => sasToken(audience, Buffer.from('wrong').toString('base64'))],
    ['an expired token', () => sasToken(audience, serviceKey, -10)],
    ['a token for another partition', () => sasToken(audience.replace(/0$/, '1'))],
    ['garbage', () => 'SharedAccessSignature nonsense'],
  ])('%s is refused with 401, without echoing the token', (_what, makeToken) => {
    const claims = new ClaimSet();
    const token = makeToken();
    const outcome = handlePutToken(request(token), identity, claims, now);
    expect(mapSection(outcome.reply, applicationProperties).get('status-code')).toEqual({
      type: 'Int',
      value: 401,
    });
    expect(outcome.refusal).toBeDefined();
    expect(JSON.stringify(outcome)).not.toContain(token);
    expect(claims.covers(audience, now)).toBe(false);
  });

  test('malformed requests and other operations', () => {
    const claims = new ClaimSet();
    const noBody = handlePutToken(request(undefined), identity, claims, now);
    expect(mapSection(noBody.reply, applicationProperties).get('status-code')?.value).toBe(400);
    const other = handlePutToken(
      request('x', audience, { operation: 'delete-token' }),
      identity,
      claims,
      now,
    );
    expect(mapSection(other.reply, applicationProperties).get('status-code')?.value).toBe(501);
  });
});

describe('$management READ', () => {
  async function withCore(
    run: (ctx: Parameters<typeof handleManagementRequest>[1]) => void,
  ): Promise<void> {
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    const core = await createCore({ clock, partitionCount: 3 });
    try {
      const claims = new ClaimSet();
      claims.grant(`sb://${host}/local-iothub/$management`, clock.now() + 3600_000);
      run({
        identity,
        d2c: core.d2c,
        hostName: host,
        createdAt: clock.now() - 5000,
        claims,
        now: clock.now(),
      });
    } finally {
      await core.close();
    }
  }

  function read(type: string, extra: Record<string, unknown> = {}): Message {
    return {
      message_id: 'mgmt-1',
      reply_to: 'mgmt-reply',
      body: Buffer.from('[]'),
      application_properties: { operation: 'READ', name: 'local-iothub', type, ...extra },
    };
  }

  test('hub information: name, created_at timestamp, partition ids as an array of strings', async () => {
    await withCore((ctx) => {
      const outcome = handleManagementRequest(read('com.microsoft:eventhub'), ctx);
      expect(outcome.reply.correlation_id).toBe('mgmt-1');
      expect(mapSection(outcome.reply, applicationProperties).get('status-code')).toEqual({
        type: 'Int',
        value: 200,
      });
      const body = mapSection(outcome.reply, amqpValue);
      expect(body.get('name')).toEqual({ type: 'Str8', value: 'local-iothub' });
      expect(body.get('created_at')?.type).toBe('Timestamp');
      expect(body.get('partition_ids')).toMatchObject({ type: 'Array32', elementCode: 0xa1 });
      const decoded = rheaMessage.decode(rheaMessage.encode(outcome.reply));
      expect((decoded.body as { partition_ids: unknown }).partition_ids).toEqual(['0', '1', '2']);
    });
  });

  test('partition information, typed, before and after an append', async () => {
    const clock = new FakeClock(Date.UTC(2025, 0, 1));
    const core = await createCore({ clock, partitionCount: 1 });
    try {
      const claims = new ClaimSet();
      claims.grant(`sb://${host}/local-iothub`, clock.now() + 3600_000);
      const ctx = {
        identity,
        d2c: core.d2c,
        hostName: host,
        createdAt: 0,
        claims,
        now: clock.now(),
      };
      const empty = rheaMessage.decode(
        rheaMessage.encode(
          handleManagementRequest(read('com.microsoft:partition', { partition: '0' }), ctx).reply,
        ),
      );
      expect(empty.body).toMatchObject({
        partition: '0',
        is_partition_empty: true,
        last_enqueued_sequence_number: -1,
      });
      const stored = await core.d2c.append(input('d'));
      const outcome = handleManagementRequest(
        read('com.microsoft:partition', { partition: '0' }),
        ctx,
      );
      const body = mapSection(outcome.reply, amqpValue);
      expect(body.get('begin_sequence_number')?.type).toMatch(/Long$/);
      expect(body.get('last_enqueued_sequence_number')).toMatchObject({ value: 0 });
      expect(body.get('last_enqueued_sequence_number')?.type).toMatch(/Long$/);
      expect(body.get('last_enqueued_offset')).toEqual({ type: 'Str8', value: stored.offset });
      expect(body.get('last_enqueued_time_utc')?.type).toBe('Timestamp');
      expect(body.get('is_partition_empty')?.type).toBe('False');
      expect(body.get('name')?.value).toBe('local-iothub');
    } finally {
      await core.close();
    }
  });

  test('unknown hub, partition or type: 404 with amqp:not-found', async () => {
    await withCore((ctx) => {
      for (const request of [
        read('com.microsoft:partition', { partition: '9' }),
        read('com.microsoft:queue'),
        {
          ...read('com.microsoft:eventhub'),
          application_properties: {
            operation: 'READ',
            name: 'other',
            type: 'com.microsoft:eventhub',
          },
        },
      ]) {
        const ctxWithToken = { ...ctx };
        const name = (request.application_properties as { name: string }).name;
        ctxWithToken.claims = new ClaimSet();
        ctxWithToken.claims.grant(`sb://${host}/${name}/$management`, ctx.now + 1000);
        const props = mapSection(
          handleManagementRequest(request, ctxWithToken).reply,
          applicationProperties,
        );
        expect(props.get('status-code')).toEqual({ type: 'Int', value: 404 });
        expect(props.get('error-condition')).toEqual({ type: 'Sym8', value: 'amqp:not-found' });
      }
    });
  });

  test('authorization: a CBS grant or a security_token, else 401', async () => {
    await withCore((ctx) => {
      const noClaims = { ...ctx, claims: new ClaimSet() };
      const refused = handleManagementRequest(read('com.microsoft:eventhub'), noClaims);
      expect(mapSection(refused.reply, applicationProperties).get('status-code')?.value).toBe(401);
      const withToken = handleManagementRequest(
        read('com.microsoft:eventhub', {
          security_token: sasToken(
            `sb://${host}/local-iothub/$management`,
            serviceKey,
            3600,
            ctx.now,
          ),
        }),
        noClaims,
      );
      expect(mapSection(withToken.reply, applicationProperties).get('status-code')?.value).toBe(
        200,
      );
      const write = handleManagementRequest(
        { ...read('x'), application_properties: { operation: 'WRITE' } },
        ctx,
      );
      expect(mapSection(write.reply, applicationProperties).get('status-code')?.value).toBe(501);
    });
  });
});

describe('partition ownership (epochs)', () => {
  class Reader implements OwnedReader {
    stolen: string | undefined;
    steal(description: string): void {
      this.stolen = description;
    }
  }

  test('a higher or equal epoch steals; a lower one and a non-epoch reader are refused', () => {
    const ownership = new PartitionOwnership();
    const plain = new Reader();
    expect(ownership.admit('$Default', '0', plain, undefined).admitted).toBe(true);
    const first = new Reader();
    expect(ownership.admit('$default', '0', first, 1).admitted).toBe(true);
    expect(plain.stolen).toBeDefined();
    const second = new Reader();
    expect(ownership.admit('$Default', '0', second, 1).admitted).toBe(true);
    expect(first.stolen).toBeDefined();
    const lower = ownership.admit('$Default', '0', new Reader(), 0);
    expect(lower).toMatchObject({ admitted: false, condition: 'amqp:link:stolen' });
    expect(ownership.admit('$Default', '0', new Reader(), undefined)).toMatchObject({
      admitted: false,
      condition: 'amqp:link:stolen',
    });
    expect(second.stolen).toBeUndefined();
    // Other partitions and groups are independent.
    expect(ownership.admit('$Default', '1', new Reader(), 0).admitted).toBe(true);
    expect(ownership.admit('other', '0', new Reader(), undefined).admitted).toBe(true);
  });

  test('releasing the epoch reader lets any reader in again', () => {
    const ownership = new PartitionOwnership();
    const admission = ownership.admit('$Default', '0', new Reader(), 5);
    if (!admission.admitted) throw new Error('not admitted');
    admission.release();
    expect(ownership.admit('$Default', '0', new Reader(), 0).admitted).toBe(true);
  });

  test('five non-epoch readers at most', () => {
    const ownership = new PartitionOwnership();
    for (let i = 0; i < 5; i++)
      expect(ownership.admit('$Default', '0', new Reader(), undefined).admitted).toBe(true);
    expect(ownership.admit('$Default', '0', new Reader(), undefined)).toMatchObject({
      admitted: false,
      condition: 'amqp:resource-limit-exceeded',
    });
  });
});

describe('frame size guard', () => {
  function frame(size: number): Buffer {
    const bytes = Buffer.alloc(size, 0);
    bytes.writeUInt32BE(size, 0);
    bytes[4] = 2;
    return bytes;
  }
  const saslHeader = Buffer.from('AMQP\x03\x01\x00\x00', 'latin1');
  const amqpHeader = Buffer.from('AMQP\x00\x01\x00\x00', 'latin1');

  test('passes headers and frames within the limit, however the bytes are split', () => {
    const violations: string[] = [];
    const guard = new FrameSizeGuard(100, (reason) => violations.push(reason));
    const stream = Buffer.concat([
      saslHeader,
      frame(20),
      frame(100),
      amqpHeader,
      frame(8),
      frame(64),
    ]);
    for (let i = 0; i < stream.length; i += 3) guard.push(stream.subarray(i, i + 3));
    expect(violations).toEqual([]);
  });

  test('reports a frame over the limit or under a header, once', () => {
    const violations: string[] = [];
    const guard = new FrameSizeGuard(100, (reason) => violations.push(reason));
    guard.push(Buffer.concat([amqpHeader, frame(50)]));
    guard.push(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x02, 0, 0, 0]));
    guard.push(Buffer.from([0x00, 0x00, 0x00, 0x02]));
    expect(violations).toEqual(['frame of 2147483647 bytes (limit 100)']);
    const small: string[] = [];
    new FrameSizeGuard(100, (reason) => small.push(reason)).push(Buffer.from([0, 0, 0, 3]));
    expect(small).toEqual(['frame of 3 bytes (limit 100)']);
  });
});

describe('fast event writer', () => {
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
