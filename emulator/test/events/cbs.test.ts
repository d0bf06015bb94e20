/**
 * The Event Hub-compatible endpoint's `$cbs` put-token policy (emulator/events/cbs.ts).
 */
import type { Message } from 'rhea';
import { ClaimSet, handlePutToken } from '../../events/cbs';
import {
  applicationProperties,
  host,
  identity,
  mapSection,
  sasToken,
  serviceKey,
} from '../support/amqp-sections';

const audience = `sb://${host}/local-iothub/ConsumerGroups/$Default/Partitions/0`;
const now = Date.now();

/** A put-token request with `token` as its body, for `name`. */
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

describe('$cbs put-token', () => {
  grantTests();
  refusalTests();
});

/** Tokens that are granted, and what their claims cover. */
function grantTests(): void {
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
}

/** Bad tokens, token types and malformed requests. */
function refusalTests(): void {
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

  test.each([
    ['servicebus.windows.net:sastoken', 200],
    ['azure-devices.net:sastoken', 200],
    // Python azure-eventhub's default token type, with a SAS token in the body.
    ['jwt', 200],
    [undefined, 200],
    ['urn:other', 400],
  ])('token type %s is answered %d', (type, statusCode) => {
    const claims = new ClaimSet();
    const outcome = handlePutToken(
      request(sasToken(audience), audience, { type }),
      identity,
      claims,
      now,
    );
    expect(mapSection(outcome.reply, applicationProperties).get('status-code')?.value).toBe(
      statusCode,
    );
    expect(claims.covers(audience, now)).toBe(statusCode === 200);
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
}
