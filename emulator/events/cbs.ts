/**
 * Claims-based security on `$cbs`: a `put-token` request carries a SAS token for an audience
 * (`sb://host[:port]/<hub>/ConsumerGroups/<cg>/Partitions/<p>` or `.../<hub>/$management`).
 * A verified token grants that audience on this connection until the token expires; links are
 * admitted only under a granted audience. Tokens never reach a log or a reply.
 */
import type { Message } from 'rhea';
import { parseSasToken, verifyEventHubToken } from '../auth/sas';
import type { HubIdentity } from '../config';
import type { CbsGrant, PutTokenRequest } from '../amqp/cbs';
import { HubError } from '../core/contracts';
import { addressPath } from './entity-address';
import { readStringProperty, replyTo } from './replies';

interface Grant {
  /** Lower-cased audience path (no scheme or host). */
  path: string;
  /** ms since the epoch. */
  expiresAt: number;
}

/** The audiences a connection holds. */
export class ClaimSet {
  private readonly grants: Grant[] = [];

  grant(audience: string, expiresAt: number): void {
    const path = addressPath(audience).toLowerCase();
    const existing = this.grants.find((g) => g.path === path);
    if (existing) existing.expiresAt = Math.max(existing.expiresAt, expiresAt);
    else this.grants.push({ path, expiresAt });
  }

  /** True when a live grant covers the entity path (equal, or a parent of it). */
  covers(entityPath: string, now: number): boolean {
    const wanted = addressPath(entityPath).toLowerCase();
    return this.grants.some(
      (g) =>
        g.expiresAt > now &&
        (g.path === '' || g.path === wanted || wanted.startsWith(`${g.path}/`)),
    );
  }
}

export interface PutTokenOutcome {
  reply: Message;
  /** The audience, when granted; never the token. */
  audience?: string;
  /** Why it was refused, for the log. */
  refusal?: string;
}

/**
 * Azure takes a SAS token under any of these types; Python azure-eventhub sends `jwt` (its
 * token-type default) with a SAS token in the body.
 */
const tokenTypes = new Set([
  'servicebus.windows.net:sastoken',
  'azure-devices.net:sastoken',
  'jwt',
]);

/**
 * A put-token on a shared connection (the AMQPS ports), already parsed by the service surface's
 * `$cbs`: verifies it as `handlePutToken` does and grants the audience on `claims`. Throws a
 * HubError (Unauthorized) for a token that does not verify; never mentions the token.
 */
export function verifyPutToken(
  request: PutTokenRequest,
  identity: HubIdentity,
  claims: ClaimSet,
  now: number,
): CbsGrant {
  if (!tokenTypes.has(request.tokenType)) {
    throw new HubError(
      'Unauthorized',
      `token type ${JSON.stringify(request.tokenType)} is not accepted`,
    );
  }
  const policy = verifyEventHubToken(request.token, identity, request.audience, now);
  const expiresAt = parseSasToken(request.token).se * 1000;
  claims.grant(request.audience, expiresAt);
  return { audience: request.audience, expiresAt, principal: policy.name };
}

export function handlePutToken(
  request: Message,
  identity: HubIdentity,
  claims: ClaimSet,
  now: number,
): PutTokenOutcome {
  const operation = readStringProperty(request, 'operation');
  if (operation !== 'put-token') {
    const refusal = `unsupported $cbs operation ${JSON.stringify(operation ?? null)}`;
    return {
      reply: replyTo(request, {
        statusCode: 501,
        description: refusal,
        condition: 'amqp:not-implemented',
      }),
      refusal,
    };
  }
  const type = readStringProperty(request, 'type');
  const audience = readStringProperty(request, 'name');
  const token: unknown = request.body;
  if (!audience || typeof token !== 'string' || (type !== undefined && !tokenTypes.has(type))) {
    const refusal = 'put-token needs name, a SAS token body and a SAS token type';
    return {
      reply: replyTo(request, {
        statusCode: 400,
        description: refusal,
        condition: 'amqp:invalid-field',
      }),
      refusal,
    };
  }
  try {
    verifyEventHubToken(token, identity, audience, now);
    claims.grant(audience, parseSasToken(token).se * 1000);
    return { reply: replyTo(request, { statusCode: 200, description: 'OK' }), audience };
  } catch (error) {
    const reason = error instanceof HubError ? error.message : 'token rejected';
    return {
      reply: replyTo(request, {
        statusCode: 401,
        description: `Unauthorized: ${reason}`,
        condition: 'amqp:unauthorized-access',
      }),
      refusal: `put-token for ${addressPath(audience)} refused: ${reason}`,
    };
  }
}
