/**
 * Claims-based security of the Event Hub-compatible endpoint, as a policy for the shared `$cbs`
 * node (amqp/cbs.ts): a `put-token` request carries a SAS token for an audience
 * (`sb://host[:port]/<hub>/ConsumerGroups/<cg>/Partitions/<p>` or `.../<hub>/$management`).
 * A verified token grants that audience on this connection until the token expires; links are
 * admitted only under a granted audience. Tokens never reach a log or a reply.
 */
import type { Message } from 'rhea';
import { parseSasToken, verifyEventHubToken } from '../auth/sas';
import type { HubIdentity } from '../config';
import type { CbsAnswer, CbsGrant, CbsPolicy, PutTokenRequest } from '../amqp/cbs';
import { HubError } from '../core/contracts';
import { addressPath } from './entity-address';
import { readStringProperty, replyTo } from '../amqp/replies';

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

/** A put-token judged the Event Hub way, with what the log may say about it. */
interface EventHubAnswer extends CbsAnswer {
  /** The audience, when granted; never the token. */
  audience?: string;
  /** Why it was refused, for the log. */
  refusal?: string;
}

function refused(statusCode: number, condition: string, refusal: string, description = refusal) {
  return { status: { statusCode, description, condition }, refusal };
}

/**
 * The Event Hub-compatible endpoint's put-token: a SAS token (under any of `tokenTypes`, or no
 * type at all) for an audience of this hub, granted on `claims`. Refusals: 501 for another
 * operation, 400 for a malformed request, 401 for a token that does not verify; each with the
 * AMQP condition @azure/core-amqp reads.
 */
function answerPutToken(
  request: Message,
  identity: HubIdentity,
  claims: ClaimSet,
  now: number,
): EventHubAnswer {
  const operation = readStringProperty(request, 'operation');
  if (operation !== 'put-token') {
    return refused(
      501,
      'amqp:not-implemented',
      `unsupported $cbs operation ${JSON.stringify(operation ?? null)}`,
    );
  }
  const type = readStringProperty(request, 'type');
  const audience = readStringProperty(request, 'name');
  const token: unknown = request.body;
  if (!audience || typeof token !== 'string' || (type !== undefined && !tokenTypes.has(type))) {
    return refused(
      400,
      'amqp:invalid-field',
      'put-token needs name, a SAS token body and a SAS token type',
    );
  }
  try {
    verifyEventHubToken(token, identity, audience, now);
    const expiresAt = parseSasToken(token).se * 1000;
    claims.grant(audience, expiresAt);
    return { status: { statusCode: 200, description: 'OK' }, audience };
  } catch (error) {
    const reason = error instanceof HubError ? error.message : 'token rejected';
    return refused(
      401,
      'amqp:unauthorized-access',
      `put-token for ${addressPath(audience)} refused: ${reason}`,
      `Unauthorized: ${reason}`,
    );
  }
}

/** `$cbs` policy of a plain Event Hub connection; `onRefused` hears why (never the token). */
export function eventHubCbsPolicy(
  identity: HubIdentity,
  claims: ClaimSet,
  now: () => number,
  onRefused: (refusal: string) => void,
): CbsPolicy {
  return (request) => {
    const answer = answerPutToken(request, identity, claims, now());
    if (answer.refusal !== undefined) onRefused(answer.refusal);
    return answer;
  };
}

/** One put-token answered as a reply message (what the `$cbs` node sends). */
export function handlePutToken(
  request: Message,
  identity: HubIdentity,
  claims: ClaimSet,
  now: number,
): PutTokenOutcome {
  const { status, audience, refusal } = answerPutToken(request, identity, claims, now);
  return {
    reply: replyTo(request, status),
    ...(audience !== undefined ? { audience } : {}),
    ...(refusal !== undefined ? { refusal } : {}),
  };
}
