/**
 * Claims-based security (CBS), the one implementation for the service surface, device links and
 * the Event Hub-compatible endpoint: the client attaches a sender with target `$cbs` and a
 * receiver with source `$cbs`, then sends `put-token` requests (application properties
 * `operation`, `type`, `name` = audience; body = the token); each reply carries `correlation_id`
 * = the request's `message_id` and application properties `status-code` (an AMQP int) and
 * `status-description`.
 *
 * Protocol-neutral on purpose: a `CbsPolicy` decides what a request is worth and how a refusal
 * reads (the service surface's policy is `servicePutTokenPolicy`, the Event Hub endpoint's is in
 * events/cbs.ts); `CbsNode` keeps the grants and routes the replies.
 */
import type { Connection, EventContext, Message, Receiver, Sender } from 'rhea';
import { HubError } from '../core/contracts';
import { ReplyLinks } from './reply-links';
import { replyTo, type ReplyStatus } from './replies';
import { remoteAddress } from './rhea-server';

export const cbsAddress = '$cbs';

export function isCbsAddress(address: string | undefined): boolean {
  return address === cbsAddress;
}

export interface PutTokenRequest {
  /** The `name` application property: the audience (resource) the token is for. */
  audience: string;
  /** The `type` application property, e.g. `servicebus.windows.net:sastoken` or `jwt`. */
  tokenType: string;
  /** The message body. Never log it. */
  token: string;
}

/** What a verified token grants on this connection. */
export interface CbsGrant {
  audience: string;
  /** ms since the epoch. */
  expiresAt: number;
  /** Whatever the verifier wants to remember (e.g. the policy name). */
  principal: string;
  /** The device a device token (`sr=<host>/devices/<id>`) names; absent for a policy's token. */
  deviceId?: string;
  /** That device's registry etag when the token was checked: any later update (disable, new
   * keys) voids the grant, as IoT Hub drops a device's connections then. */
  deviceEtag?: string;
}

/**
 * Resolves with the grant, or throws: a `HubError` becomes a reply with its status
 * (Unauthorized → 401, ArgumentInvalid → 400, NotImplemented → 501, else 500) and its message
 * as the description (so messages must never contain secrets); any other error becomes 500.
 */
export type PutTokenVerifier = (request: PutTokenRequest) => CbsGrant | Promise<CbsGrant>;

/** A policy's answer to one request: the reply's status, and the grant when it granted one. */
export interface CbsAnswer {
  status: ReplyStatus;
  grant?: CbsGrant;
}

/** Judges one `$cbs` request; synchronous policies are answered synchronously. */
export type CbsPolicy = (request: Message) => CbsAnswer | Promise<CbsAnswer>;

export interface CbsOptions {
  verify: PutTokenVerifier;
  /** Told about every refused request (for a log line). */
  onDenied?: (request: Partial<PutTokenRequest>, statusCode: number, description: string) => void;
  /** Told about every unexpected failure inside `verify`. */
  onError?: (error: unknown) => void;
}

export interface CbsEndpoint {
  /** Grants accepted on this connection, the latest per audience. */
  grants(): readonly CbsGrant[];
  /** The latest grant matching `predicate` that has not expired at `now`. */
  findGrant(now: number, predicate?: (grant: CbsGrant) => boolean): CbsGrant | undefined;
}

/** `$cbs` on one connection: the policy, the grants it gave, the reply links. */
export class CbsNode implements CbsEndpoint {
  private readonly granted = new Map<string, CbsGrant>();

  constructor(
    private readonly policy: CbsPolicy,
    readonly replies: ReplyLinks,
  ) {}

  /**
   * Answers `request` (from a link on `session`). True once the reply is sent or queued; false
   * when no reply link is attached to carry it.
   */
  answer(request: Message, session: unknown): boolean | Promise<boolean> {
    const answer = this.policy(request);
    return answer instanceof Promise
      ? answer.then((settled) => this.reply(request, settled, session))
      : this.reply(request, answer, session);
  }

  grants(): readonly CbsGrant[] {
    return [...this.granted.values()];
  }

  findGrant(now: number, predicate?: (grant: CbsGrant) => boolean): CbsGrant | undefined {
    return [...this.granted.values()]
      .reverse()
      .find((grant) => grant.expiresAt > now && (predicate ? predicate(grant) : true));
  }

  private reply(request: Message, answer: CbsAnswer, session: unknown): boolean {
    if (answer.grant) this.granted.set(answer.grant.audience, answer.grant);
    return this.replies.send(replyTo(request, answer.status), session);
  }
}

function statusFor(error: unknown): ReplyStatus {
  if (!(error instanceof HubError)) return { statusCode: 500, description: 'internal error' };
  switch (error.code) {
    case 'Unauthorized':
      return { statusCode: 401, description: error.message };
    case 'ArgumentInvalid':
      return { statusCode: 400, description: error.message };
    case 'NotImplemented':
      return { statusCode: 501, description: error.message };
    default:
      return { statusCode: 500, description: error.message };
  }
}

function stringProperty(properties: unknown, key: string): string | undefined {
  if (typeof properties !== 'object' || properties === null) return undefined;
  const value: unknown = (properties as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}

function bodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  // A data section arrives as rhea's Section object: { typecode: 0x75, content: Buffer }.
  if (typeof body === 'object' && body !== null && 'content' in body) {
    const content: unknown = body.content;
    if (Buffer.isBuffer(content)) return content.toString('utf8');
  }
  return undefined;
}

/** A put-token's fields, or the 400 refusal of a request that is not a complete put-token. */
function readPutToken(
  request: Message,
): PutTokenRequest | { refusal: string; partial: Partial<PutTokenRequest> } {
  const properties: unknown = request.application_properties;
  const operation = stringProperty(properties, 'operation');
  const audience = stringProperty(properties, 'name');
  const tokenType = stringProperty(properties, 'type');
  const token = bodyText(request.body);
  if (operation === 'put-token' && audience && tokenType && token !== undefined) {
    return { audience, tokenType, token };
  }
  const refusal =
    operation !== 'put-token'
      ? `unsupported CBS operation ${JSON.stringify(operation ?? null)}`
      : 'put-token needs name, type and a token body';
  return { refusal, partial: { audience, tokenType } };
}

/**
 * The service surface's policy: SAS tokens judged by `verify`; refusals carry the `HubError`'s
 * status and message (see `PutTokenVerifier`), malformed requests 400.
 */
export function servicePutTokenPolicy(options: CbsOptions): CbsPolicy {
  return async (request) => {
    const read = readPutToken(request);
    if ('refusal' in read) {
      options.onDenied?.(read.partial, 400, read.refusal);
      return { status: { statusCode: 400, description: read.refusal } };
    }
    try {
      const grant = await options.verify(read);
      return { status: { statusCode: 200, description: 'OK' }, grant };
    } catch (error) {
      const status = statusFor(error);
      if (!(error instanceof HubError)) options.onError?.(error);
      options.onDenied?.(
        { audience: read.audience, tokenType: read.tokenType },
        status.statusCode,
        status.description,
      );
      return { status };
    }
  };
}

function serveRequests(
  node: CbsNode,
  receiver: Receiver,
  onError?: (error: unknown) => void,
): void {
  receiver.set_target({ address: cbsAddress });
  receiver.on('message', (context: EventContext) => {
    const { message, delivery } = context;
    if (!message || !delivery) return;
    // A receiver opened with rhea's default `autoaccept` has settled it already.
    if (!delivery.settled) delivery.accept();
    void Promise.resolve(node.answer(message, receiver.session)).catch((error: unknown) =>
      onError?.(error),
    );
  });
}

function serveReplies(node: CbsNode, sender: Sender): void {
  sender.set_source({ address: cbsAddress });
  node.replies.add(sender);
  sender.on('sendable', () => node.replies.flush(sender));
  sender.on('sender_close', () => node.replies.remove(sender));
}

/**
 * Serves `$cbs` links on a service-surface connection with `servicePutTokenPolicy`. Other link
 * handlers on the same connection must skip links whose address is `$cbs` (see `isCbsAddress`).
 */
export function attachCbs(connection: Connection, options: CbsOptions): CbsEndpoint {
  const node = new CbsNode(
    servicePutTokenPolicy(options),
    new ReplyLinks({ holdUntilAttached: true }),
  );
  connection.on('receiver_open', (context: EventContext) => {
    const receiver = context.receiver;
    if (receiver && isCbsAddress(remoteAddress(receiver))) {
      serveRequests(node, receiver, options.onError);
    }
  });
  connection.on('sender_open', (context: EventContext) => {
    const sender = context.sender;
    if (sender && isCbsAddress(remoteAddress(sender))) serveReplies(node, sender);
  });
  return node;
}
