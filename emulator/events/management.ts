/**
 * `$management` READ requests: hub runtime information (`com.microsoft:eventhub`) and partition
 * runtime information (`com.microsoft:partition`), answered as an AMQP-value map with every value
 * explicitly typed (partition ids as an array of strings, sequence numbers as longs).
 */
import { types, type Message } from 'rhea';
import { verifyEventHubToken } from '../auth/sas';
import type { HubIdentity } from '../config';
import { HubError, type DeviceToCloud } from '../core/contracts';
import type { ClaimSet } from './cbs';
import { sameName } from './entity-address';
import { ReplyLinks } from '../amqp/reply-links';
import { readStringProperty, replyTo } from '../amqp/replies';

const str8Code = 0xa1;

export interface ManagementContext {
  identity: HubIdentity;
  d2c: DeviceToCloud;
  /** `host:port` the endpoint is addressed by, for audiences. */
  hostName: string;
  /** ms since the epoch the hub was "created" (the emulator's start). */
  createdAt: number;
  claims: ClaimSet;
  now: number;
}

export interface ManagementOutcome {
  reply: Message;
  refusal?: string;
}

function notFound(request: Message, description: string): ManagementOutcome {
  return {
    reply: replyTo(request, { statusCode: 404, description, condition: 'amqp:not-found' }),
    refusal: description,
  };
}

function authorized(request: Message, entity: string, context: ManagementContext): boolean {
  const audiencePath = `${entity}/$management`;
  if (context.claims.covers(audiencePath, context.now)) return true;
  const token = readStringProperty(request, 'security_token');
  if (!token) return false;
  try {
    verifyEventHubToken(
      token,
      context.identity,
      `sb://${context.hostName}/${audiencePath}`,
      context.now,
    );
    return true;
  } catch (error) {
    if (error instanceof HubError) return false;
    throw error;
  }
}

export function handleManagementRequest(
  request: Message,
  context: ManagementContext,
): ManagementOutcome {
  const operation = readStringProperty(request, 'operation');
  const type = readStringProperty(request, 'type');
  const name = readStringProperty(request, 'name') ?? '';
  if (operation !== 'READ') {
    const description = `unsupported $management operation ${JSON.stringify(operation ?? null)}`;
    return {
      reply: replyTo(request, { statusCode: 501, description, condition: 'amqp:not-implemented' }),
      refusal: description,
    };
  }
  if (!authorized(request, name, context)) {
    const description = 'Unauthorized: no valid token for the $management audience';
    return {
      reply: replyTo(request, {
        statusCode: 401,
        description,
        condition: 'amqp:unauthorized-access',
      }),
      refusal: description,
    };
  }
  const hubName = context.identity.hubName;
  if (!sameName(name, hubName)) {
    return notFound(
      request,
      `The messaging entity 'sb://${context.hostName}/${name}' could not be found.`,
    );
  }
  if (type === 'com.microsoft:eventhub') {
    const body = types.wrap_map({
      name: types.wrap_string(hubName),
      created_at: types.wrap_timestamp(context.createdAt),
      partition_count: types.wrap_int(context.d2c.partitionIds.length),
      partition_ids: types.wrap_array([...context.d2c.partitionIds], str8Code, undefined),
    });
    return { reply: replyTo(request, { statusCode: 200, description: 'OK' }, body) };
  }
  if (type === 'com.microsoft:partition') {
    const partitionId = readStringProperty(request, 'partition') ?? '';
    if (!context.d2c.partitionIds.includes(partitionId)) {
      return notFound(
        request,
        `The messaging entity 'sb://${context.hostName}/${hubName}/Partitions/${partitionId}' could not be found.`,
      );
    }
    const info = context.d2c.info(partitionId);
    const body = types.wrap_map({
      name: types.wrap_string(hubName),
      partition: types.wrap_string(partitionId),
      begin_sequence_number: types.wrap_long(info.beginSequenceNumber),
      last_enqueued_sequence_number: types.wrap_long(info.lastEnqueuedSequenceNumber),
      last_enqueued_offset: types.wrap_string(info.lastEnqueuedOffset),
      last_enqueued_time_utc: types.wrap_timestamp(info.lastEnqueuedTime),
      is_partition_empty: types.wrap_boolean(info.isEmpty),
    });
    return { reply: replyTo(request, { statusCode: 200, description: 'OK' }, body) };
  }
  return notFound(request, `unknown $management entity type ${JSON.stringify(type ?? null)}`);
}

/** What a management node needs besides each request's time. */
export type ManagementScope = Omit<ManagementContext, 'now'>;

/**
 * `$management` on one connection: answers each request from the partitions' current state and
 * routes the reply to a reply link the client attached (see amqp/reply-links.ts).
 */
export class ManagementNode {
  readonly replies = new ReplyLinks({ holdUntilAttached: false });

  constructor(
    private readonly scope: ManagementScope,
    private readonly now: () => number,
    private readonly onRefused: (refusal: string) => void,
  ) {}

  /** False when no reply link is attached to carry the reply. */
  answer(request: Message, session: unknown): boolean {
    const outcome = handleManagementRequest(request, { ...this.scope, now: this.now() });
    if (outcome.refusal) this.onRefused(outcome.refusal);
    return this.replies.send(outcome.reply, session);
  }
}
