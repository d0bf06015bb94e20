/**
 * The shared `$cbs` node (emulator/amqp/cbs.ts) with the service surface's policy: what a
 * put-token is answered, which grants it keeps, and how refusals read. The Event Hub endpoint's
 * policy is tested in events/cbs.test.ts; both go through the same node.
 */
import type { Message } from 'rhea';
import {
  CbsNode,
  servicePutTokenPolicy,
  type CbsGrant,
  type PutTokenRequest,
} from '../../amqp/cbs';
import { ReplyLinks } from '../../amqp/reply-links';
import { HubError, type HubErrorCode } from '../../core/contracts';
import { applicationProperties, mapSection } from '../support/amqp-sections';

const audience = 'localhost:5671';

function request(fields: { operation?: string; name?: string; type?: string; body?: unknown }) {
  const properties: Record<string, unknown> = {
    operation: fields.operation ?? 'put-token',
    type: fields.type ?? 'servicebus.windows.net:sastoken',
  };
  if (fields.name !== null) properties.name = fields.name ?? audience;
  return {
    message_id: 'put-1',
    reply_to: 'cbs',
    application_properties: properties,
    ...('body' in fields ? { body: fields.body } : { body: 'SharedAccessSignature sr=x' }),
  } as Message;
}

/** A node whose replies land in `replies`; `verify` decides what each token is worth. */
function nodeWith(verify: (request: PutTokenRequest) => CbsGrant | Promise<CbsGrant>) {
  const replies: Message[] = [];
  const denied: string[] = [];
  const errors: unknown[] = [];
  const links = new ReplyLinks({ holdUntilAttached: true });
  links.add({
    target: { address: 'cbs' },
    is_open: () => true,
    sendable: () => true,
    send: (message: Message) => replies.push(message),
  } as never);
  const node = new CbsNode(
    servicePutTokenPolicy({
      verify,
      onDenied: (_request, statusCode, description) => denied.push(`${statusCode} ${description}`),
      onError: (error) => errors.push(error),
    }),
    links,
  );
  return { node, replies, denied, errors };
}

function status(reply: Message | undefined): [unknown, unknown, unknown] {
  if (!reply) throw new Error('no reply');
  const props = mapSection(reply, applicationProperties);
  return [
    props.get('status-code'),
    props.get('status-description')?.value,
    props.get('error-condition'),
  ];
}

const grant = (expiresAt: number, extra: Partial<CbsGrant> = {}): CbsGrant => ({
  audience,
  expiresAt,
  principal: 'service',
  ...extra,
});

describe('$cbs with the service policy', () => {
  grantTests();
  refusalTests();
});

/** Verified tokens: the reply, the token's forms, and the grants kept. */
function grantTests(): void {
  test('a verified token: 200 as an AMQP int, correlated, and the grant kept', async () => {
    const { node, replies } = nodeWith(() => grant(5_000));
    expect(await node.answer(request({}), undefined)).toBe(true);
    expect(status(replies[0])).toEqual([{ type: 'Int', value: 200 }, 'OK', undefined]);
    expect(replies[0]?.correlation_id).toBe('put-1');
    expect(replies[0]?.to).toBe('cbs');
    expect(node.findGrant(4_999)).toMatchObject({ principal: 'service' });
    expect(node.findGrant(5_000)).toBeUndefined();
    expect(node.findGrant(0, (g) => g.deviceId !== undefined)).toBeUndefined();
  });

  test('the token arrives as text, bytes or a data section', async () => {
    const seen: string[] = [];
    const { node } = nodeWith((r) => {
      seen.push(r.token);
      return grant(1);
    });
    const bytes = Buffer.from('tok', 'utf8');
    for (const body of ['tok', bytes, { typecode: 0x75, content: bytes }]) {
      await node.answer(request({ body }), undefined);
    }
    expect(seen).toEqual(['tok', 'tok', 'tok']);
  });

  test('the latest grant per audience is kept', async () => {
    let expiresAt = 10;
    const { node } = nodeWith(() => grant(expiresAt));
    await node.answer(request({}), undefined);
    expiresAt = 20;
    await node.answer(request({}), undefined);
    expect(node.grants()).toEqual([grant(20)]);
  });
}

/** Malformed requests, refused tokens and unexpected failures, and how each is answered. */
function refusalTests(): void {
  test.each<[string, Parameters<typeof request>[0], string]>([
    [
      'another operation',
      { operation: 'delete-token' },
      'unsupported CBS operation "delete-token"',
    ],
    [
      'no audience',
      { name: null as unknown as string },
      'put-token needs name, type and a token body',
    ],
    ['no token', { body: undefined }, 'put-token needs name, type and a token body'],
  ])('%s: 400 with no condition, and verify is not asked', async (_what, fields, description) => {
    let asked = false;
    const { node, replies, denied } = nodeWith(() => {
      asked = true;
      return grant(1);
    });
    await node.answer(request(fields), undefined);
    expect(status(replies[0])).toEqual([{ type: 'Int', value: 400 }, description, undefined]);
    expect(denied).toEqual([`400 ${description}`]);
    expect(asked).toBe(false);
  });

  test.each<[HubErrorCode, number]>([
    ['Unauthorized', 401],
    ['ArgumentInvalid', 400],
    ['NotImplemented', 501],
    ['DeviceNotFound', 500],
  ])('a refused token (%s) answers %d with the error message', async (code, statusCode) => {
    const { node, replies, errors } = nodeWith(() => {
      throw new HubError(code, 'no access for you');
    });
    await node.answer(request({}), undefined);
    expect(status(replies[0])).toEqual([
      { type: 'Int', value: statusCode },
      'no access for you',
      undefined,
    ]);
    expect(errors).toEqual([]);
    expect(node.grants()).toEqual([]);
  });

  test('an unexpected failure is 500 "internal error" and reported, never its message', async () => {
    const { node, replies, errors } = nodeWith(() => {
      throw new Error('secret detail');
    });
    await node.answer(request({}), undefined);
    expect(status(replies[0])).toEqual([{ type: 'Int', value: 500 }, 'internal error', undefined]);
    expect(errors).toHaveLength(1);
  });
}
