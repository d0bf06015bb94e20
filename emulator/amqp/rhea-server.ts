/**
 * Serving AMQP with rhea on sockets that someone else accepted. rhea's own `listen` creates a
 * `Connection` per socket and calls its (untyped) `accept(socket)`; we do the same so `server.ts`
 * can keep owning the listeners, TLS and protocol sniffing.
 */
import type { Duplex } from 'node:stream';
import type { Connection, Container, link, Message, ServerConnectionOptions } from 'rhea';

/**
 * What rhea's `listen` does with each socket, typed: the typings declare neither
 * `Connection#accept` nor `create_connection` with server-side options, though both exist
 * (container.js `listen`, connection.js `accept`).
 */
interface AcceptingConnection extends Connection {
  accept(socket: Duplex): Connection;
}
interface ServerContainer {
  create_connection(options: ServerConnectionOptions): Partial<AcceptingConnection>;
}

function isAccepting(connection: Partial<AcceptingConnection>): connection is AcceptingConnection {
  return typeof connection.accept === 'function';
}

/**
 * Starts the server side of an AMQP connection on an already-connected (and, for AMQPS,
 * already-decrypted) stream. The stream must begin with the AMQP or SASL protocol header; rhea
 * answers both (SASL ANONYMOUS unless the container offers other mechanisms).
 */
export function acceptAmqpConnection(
  container: Container,
  socket: Duplex,
  options: ServerConnectionOptions,
): Connection {
  const connection = (container as unknown as ServerContainer).create_connection(options);
  if (!isAccepting(connection)) throw new Error('this rhea version cannot accept a socket');
  return connection.accept(socket);
}

/**
 * rhea's `Message` typing describes decoded messages (with `toJSON`); `send` encodes any plain
 * object with the standard field names, which is what we build.
 */
export function outgoingMessage(fields: Record<string, unknown>): Message {
  return fields as unknown as Message;
}

/** A decoded message's fields, for the caller to narrow one by one. */
export function messageFields(message: Message): Record<string, unknown> {
  return message as unknown as Record<string, unknown>;
}

/** The address a peer attached with: a receiving peer names the source, a sending peer the target. */
export function remoteAddress(amqpLink: link): string | undefined {
  // Our local sender serves the peer's receiver, whose interest is the source.
  const terminus: unknown = amqpLink.is_sender() ? amqpLink.source : amqpLink.target;
  if (typeof terminus !== 'object' || terminus === null) return undefined;
  const address = (terminus as { address?: unknown }).address;
  return typeof address === 'string' ? address : undefined;
}

/** How many fields each AMQP 1.0 performative has, by descriptor code (open … close). */
const performativeFieldCounts = new Map<number, number>([
  [0x10, 10], // open
  [0x11, 8], // begin
  [0x12, 14], // attach
  [0x13, 11], // flow
  [0x14, 11], // transfer
  [0x15, 6], // disposition
  [0x16, 3], // detach
  [0x17, 1], // end
  [0x18, 1], // close
]);

/** A rhea performative keeps its fields in `value`, up to the last one set: fill the rest with null. */
function padFields(performative: unknown): void {
  const code = (performative as { constructor?: { descriptor?: { numeric?: unknown } } })
    .constructor?.descriptor?.numeric;
  const count = typeof code === 'number' ? performativeFieldCounts.get(code) : undefined;
  const value = (performative as { value?: unknown }).value;
  if (count === undefined || !Array.isArray(value)) return;
  for (let i = 0; i < count; i++) if (value[i] === undefined) value[i] = null;
}

type Output = (frame: unknown, payload?: unknown) => unknown;

/**
 * rhea leaves trailing unset fields out of every performative (legal AMQP), but Python
 * azure-eventhub's decoder indexes them and crashes (`IndexError` in `_incoming_open`,
 * `_incoming_begin`, and on a transfer, whose payload it expects right after the 11th field);
 * Azure sends them all. This sends every field, null when unset, the default `handle-max`
 * explicitly, and both termini of an attach. Call right after accepting, before other handlers
 * are registered, so what they set still wins.
 */
export function sendAllFields(connection: Connection): void {
  const local = (target: unknown) => (target as { local?: Record<string, unknown> }).local;
  padFields(local(connection)?.open);
  connection.on('session_open', (context: { session?: unknown }) => {
    const session = context.session as { output?: Output } | undefined;
    const begin = local(session)?.begin as { handle_max?: unknown } | undefined;
    if (begin && (begin.handle_max === undefined || begin.handle_max === null)) {
      begin.handle_max = 4294967295;
    }
    const output = session?.output;
    if (!session || typeof output !== 'function') return;
    // Every frame of the session (begin, attach, flow, transfer, …) passes through `output`.
    session.output = function (this: unknown, frame: unknown, payload?: unknown) {
      padFields(frame);
      return output.call(this, frame, payload);
    };
  });
  const echoTermini = (context: { sender?: link; receiver?: link }) => {
    const amqpLink = context.sender ?? context.receiver;
    const attach = local(amqpLink)?.attach as { source?: unknown; target?: unknown } | undefined;
    if (!amqpLink || !attach) return;
    // Python also requires both termini in the reply: echo the address of any the peer sent.
    const echo = (terminus: unknown) => {
      const address = (terminus as { address?: unknown } | undefined)?.address;
      return typeof address === 'string' ? { address } : undefined;
    };
    const source = echo(amqpLink.source);
    const target = echo(amqpLink.target);
    if (!attach.source && source) amqpLink.set_source(source);
    if (!attach.target && target) amqpLink.set_target(target);
  };
  connection.on('sender_open', echoTermini);
  connection.on('receiver_open', echoTermini);
}
