/**
 * Claims-based security (CBS) on one rhea server connection, as Azure Service Bus, Event Hubs and
 * IoT Hub speak it: the client attaches a sender with target `$cbs` and a receiver with source
 * `$cbs`, then sends `put-token` requests (application properties `operation`, `type`, `name` =
 * audience; body = the token); each reply carries `correlation_id` = the request's `message_id`
 * and application properties `status-code` (an AMQP int) and `status-description`.
 *
 * Protocol-neutral on purpose: the caller decides what a token is worth through `verify`, so the
 * IoT Hub service surface and the Event Hub-compatible endpoint can share it.
 */
import { types, type Connection, type Delivery, type EventContext, type Sender } from 'rhea';
import { HubError } from '../core/contracts';
import { messageFields, outgoingMessage, remoteAddress } from './rhea-server';

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

interface PendingReply {
  replyTo: string | undefined;
  message: Record<string, unknown>;
}

function statusFor(error: unknown): { statusCode: number; description: string } {
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

/**
 * Serves `$cbs` links on `connection`. Other link handlers on the same connection must skip
 * links whose address is `$cbs` (see `isCbsAddress`).
 */
export function attachCbs(connection: Connection, options: CbsOptions): CbsEndpoint {
  const grants = new Map<string, CbsGrant>();
  const replySenders: Sender[] = [];
  const queued: PendingReply[] = [];

  const pickSender = (replyTo: string | undefined): Sender | undefined => {
    const open = replySenders.filter((s) => s.is_open());
    // Clients that use several reply links name theirs in the target; `reply_to` picks it.
    const named = open.find((s) => {
      const target: unknown = s.target;
      return (
        typeof target === 'object' &&
        target !== null &&
        (target as { address?: unknown }).address === replyTo
      );
    });
    return named ?? open[0];
  };

  const flush = (): void => {
    while (queued.length > 0) {
      const next = queued[0];
      if (!next) return;
      const sender = pickSender(next.replyTo);
      if (!sender?.sendable()) return;
      queued.shift();
      sender.send(outgoingMessage(next.message));
    }
  };

  const reply = (request: Record<string, unknown>, statusCode: number, description: string) => {
    const replyTo = typeof request.reply_to === 'string' ? request.reply_to : undefined;
    queued.push({
      replyTo,
      message: {
        ...(replyTo !== undefined ? { to: replyTo } : {}),
        correlation_id: request.message_id,
        application_properties: {
          'status-code': types.wrap_int(statusCode),
          'status-description': description,
        },
      },
    });
    flush();
  };

  const handleRequest = async (request: Record<string, unknown>, delivery: Delivery) => {
    const properties: unknown = request.application_properties;
    const operation = stringProperty(properties, 'operation');
    const audience = stringProperty(properties, 'name');
    const tokenType = stringProperty(properties, 'type');
    const token = bodyText(request.body);
    // A receiver opened with rhea's default `autoaccept` has settled it already.
    if (!delivery.settled) delivery.accept();
    if (operation !== 'put-token' || !audience || !tokenType || token === undefined) {
      const description =
        operation !== 'put-token'
          ? `unsupported CBS operation ${JSON.stringify(operation ?? null)}`
          : 'put-token needs name, type and a token body';
      options.onDenied?.({ audience, tokenType }, 400, description);
      reply(request, 400, description);
      return;
    }
    try {
      const grant = await options.verify({ audience, tokenType, token });
      grants.set(grant.audience, grant);
      reply(request, 200, 'OK');
    } catch (error) {
      const { statusCode, description } = statusFor(error);
      if (!(error instanceof HubError)) options.onError?.(error);
      options.onDenied?.({ audience, tokenType }, statusCode, description);
      reply(request, statusCode, description);
    }
  };

  connection.on('receiver_open', (context: EventContext) => {
    const receiver = context.receiver;
    if (!receiver || !isCbsAddress(remoteAddress(receiver))) return;
    receiver.set_target({ address: cbsAddress });
    receiver.on('message', (messageContext: EventContext) => {
      const { message, delivery } = messageContext;
      if (!message || !delivery) return;
      void handleRequest(messageFields(message), delivery).catch((error: unknown) =>
        options.onError?.(error),
      );
    });
  });
  connection.on('sender_open', (context: EventContext) => {
    const sender = context.sender;
    if (!sender || !isCbsAddress(remoteAddress(sender))) return;
    sender.set_source({ address: cbsAddress });
    replySenders.push(sender);
    sender.on('sendable', flush);
    sender.on('sender_close', () => {
      const index = replySenders.indexOf(sender);
      if (index >= 0) replySenders.splice(index, 1);
    });
    flush();
  });

  return {
    grants: () => [...grants.values()],
    findGrant: (now, predicate) =>
      [...grants.values()]
        .reverse()
        .find((grant) => grant.expiresAt > now && (predicate ? predicate(grant) : true)),
  };
}
