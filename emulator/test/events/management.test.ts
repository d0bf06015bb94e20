/**
 * `$management` READ replies of the Event Hub-compatible endpoint (emulator/events/management.ts).
 */
import { message as rheaMessage, type Message } from 'rhea';
import { FakeClock } from '../../core/clock';
import { createCore } from '../../core/create-core';
import { ClaimSet } from '../../events/cbs';
import { handleManagementRequest } from '../../events/management';
import {
  amqpValue,
  applicationProperties,
  host,
  identity,
  input,
  mapSection,
  sasToken,
  serviceKey,
} from '../support/amqp-sections';

/** Runs `run` against a three-partition core whose claims cover `$management`. */
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

/** A READ request for the entity type `type`. */
function read(type: string, extra: Record<string, unknown> = {}): Message {
  return {
    message_id: 'mgmt-1',
    reply_to: 'mgmt-reply',
    body: Buffer.from('[]'),
    application_properties: { operation: 'READ', name: 'local-iothub', type, ...extra },
  };
}

describe('$management READ', () => {
  readTests();
  refusalTests();
});

/** Hub and partition information. */
function readTests(): void {
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
}

/** Unknown entities, authorization and other operations. */
function refusalTests(): void {
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
}
