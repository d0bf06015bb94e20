/**
 * Request/response replies on `$cbs` and `$management`. The status code is an AMQP int, not the
 * uint rhea would pick for a plain number: the .NET client casts it strictly.
 */
import { types, type Message } from 'rhea';

export function readApplicationProperty(request: Message, name: string): unknown {
  const properties: unknown = request.application_properties;
  if (typeof properties !== 'object' || properties === null) return undefined;
  return (properties as Record<string, unknown>)[name];
}

export function readStringProperty(request: Message, name: string): string | undefined {
  const value = readApplicationProperty(request, name);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return undefined;
}

export interface ReplyStatus {
  statusCode: number;
  description: string;
  /** AMQP condition for failures, read by @azure/core-amqp as `error-condition`. */
  condition?: string;
}

/** The reply message: correlated to the request's message id (or its correlation id when it had none). */
export function replyTo(request: Message, status: ReplyStatus, body?: unknown): Message {
  const properties: Record<string, unknown> = {
    'status-code': types.wrap_int(status.statusCode),
    'status-description': types.wrap_string(status.description),
  };
  if (status.condition) properties['error-condition'] = types.wrap_symbol(status.condition);
  const reply: Message = { application_properties: properties } as Message;
  // Echo the id as it came (string, ulong or uuid bytes): clients match on it.
  const correlation = (request.message_id ?? request.correlation_id) as unknown;
  if (
    typeof correlation === 'string' ||
    typeof correlation === 'number' ||
    // A Buffer is re-encoded as a uuid: only 16 bytes can be one.
    (Buffer.isBuffer(correlation) && correlation.length === 16)
  ) {
    reply.correlation_id = correlation;
  }
  if (typeof request.reply_to === 'string') reply.to = request.reply_to;
  if (body !== undefined) reply.body = body;
  return reply;
}
