/**
 * The Event Hub-compatible endpoint of the local IoT Hub: plain AMQP 1.0 (rhea) for
 * `UseDevelopmentEmulator=true` connection strings. `server.ts` owns the listener and hands each
 * accepted socket to `handle`. What it serves:
 * - SASL ANONYMOUS and MSSBCBS; CBS put-token per link audience;
 * - `$management` READ for the hub and its partitions;
 * - receivers on `<hub>/ConsumerGroups/<cg>/Partitions/<p>` with start filters, epochs and
 *   runtime metrics, fed from the core's D2C log as credit allows.
 * The endpoint is read-only, like IoT Hub's: links that would send events are refused.
 */
import type { Duplex } from 'node:stream';
import {
  create_container,
  type Connection,
  type ConnectionOptions,
  type EventContext,
  type Message,
  type Receiver,
  type Sender,
} from 'rhea';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import type { CbsGrant } from '../amqp/cbs';
import { sendAllFields } from '../amqp/rhea-server';
import type { SharedSession, SharedSurface } from '../amqp/shared-surface';
import { ClaimSet, handlePutToken, verifyPutToken } from './cbs';
import {
  addressPath,
  isCbsNode,
  isEventsAudience,
  isManagementNode,
  parsePartitionAddress,
  sameName,
} from './entity-address';
import { runtimeMetricCapability } from './event-encoding';
import { guardFrameSizes } from './frame-guard';
import { handleManagementRequest } from './management';
import { PartitionOwnership } from './ownership';
import { PartitionReader } from './partition-reader';
import { enableEventsSasl } from './sasl';
import {
  InvalidFilterError,
  resolveStartSequenceNumber,
  startPositionFromFilter,
} from './start-position';

export interface EventsAdapterOptions {
  /** Consumer groups besides `$Default`. */
  consumerGroups: readonly string[];
}

const epochProperty = 'com.microsoft:epoch';

/** Advertised in our open frame and enforced on incoming frames; requests and tokens are small. */
const maxFrameSize = 1024 * 1024;

interface AmqpError {
  condition: string;
  description: string;
}

/** What rhea's typings leave out but its connections have. */
interface AcceptingConnection extends Connection {
  accept(socket: Duplex): Connection;
}

type NodeKind = 'cbs' | 'management';

interface ReplyLink {
  sender: Sender;
  kind: NodeKind;
  /** Replies waiting for credit. */
  pending: Message[];
}

/** Per-connection state: granted audiences, reply links, partition readers. */
interface ConnectionState {
  id: string;
  connection: Connection;
  socket: Duplex;
  claims: ClaimSet;
  replyLinks: ReplyLink[];
  readers: Map<Sender, { reader: PartitionReader; release: () => void }>;
  /**
   * Joined onto a service-surface connection (the AMQPS ports): only this endpoint's links are
   * ours, `$cbs` and the connection's lifecycle belong to the service adapter.
   */
  shared: boolean;
  closed: boolean;
}

/** The addresses this endpoint serves on a shared connection: partitions and `$management`. */
export function isEventsAddress(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (isManagementNode(address) || parsePartitionAddress(address) !== undefined)
  );
}

function asStringArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return [value];
  return [];
}

function readEpoch(properties: unknown): number | undefined | 'invalid' {
  if (typeof properties !== 'object' || properties === null) return undefined;
  const entry = Object.entries(properties as Record<string, unknown>).find(
    ([key]) => key === epochProperty,
  );
  if (!entry) return undefined;
  const value: unknown = entry[1];
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  // A long beyond 2^53 arrives as a Buffer; any other form is not an epoch.
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  return 'invalid';
}

/**
 * A terminus address as a string. Anything the peer sent that is not one becomes '' — rhea
 * encodes our attach later, outside any handler, where a non-string would throw.
 */
function addressOf(terminus: unknown): string {
  if (typeof terminus !== 'object' || terminus === null) return '';
  const address: unknown = (terminus as { address?: unknown }).address;
  return typeof address === 'string' ? address : '';
}

/** rhea echoes the peer's link name in our attach; keep it encodable whatever was sent. */
function sanitizeLinkName(link: Sender | Receiver): void {
  const local = (link as unknown as { local: { attach: { name?: unknown } } }).local.attach;
  if (typeof local.name !== 'string') local.name = String(local.name);
}

function remoteAddressOf(socket: Duplex): string {
  const s = socket as Partial<{ remoteAddress: string; remotePort: number }>;
  return s.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? '?'}` : 'a stream';
}

export function createEventsAdapter(
  ctx: EmulatorContext,
  options: EventsAdapterOptions,
): ProtocolAdapter & SharedSurface {
  const { core, identity, log } = ctx;
  const consumerGroups = ['$Default', ...options.consumerGroups];
  const createdAt = core.clock.now();
  const ownership = new PartitionOwnership();
  const connections = new Set<ConnectionState>();
  let connectionCounter = 0;
  let closing = false;

  const container = create_container({ id: `${identity.hubName}-events` });
  enableEventsSasl(container.sasl_server_mechanisms as Record<string, unknown>);
  // rhea re-emits unhandled link, session and connection errors on the container; without a
  // listener Node would throw them. They are already handled per connection.
  container.on('error', () => undefined);

  /** Readers of one partition, woken when it grows. */
  const readersByPartition = new Map<string, Set<PartitionReader>>();
  const unsubscribe = core.d2c.onAppend((event) => {
    for (const reader of readersByPartition.get(event.partitionId) ?? []) reader.schedule();
  });

  function refuse(
    state: ConnectionState,
    link: Sender | Receiver,
    what: string,
    error: AmqpError,
  ): void {
    log.warn(`connection ${state.id}: refused ${what}: ${error.description}`);
    link.close(error);
  }

  function partitionDescription(address: string): string {
    return `sb://${ctx.hostName}/${addressPath(address)}`;
  }

  function openPartitionReader(state: ConnectionState, sender: Sender, address: string): void {
    const target = parsePartitionAddress(address);
    if (!target) {
      refuse(state, sender, `receiver on ${JSON.stringify(address)}`, {
        condition: 'amqp:not-found',
        description: `The messaging entity '${partitionDescription(address)}' could not be found.`,
      });
      return;
    }
    const what = `receiver on ${addressPath(address)}`;
    const notFound: AmqpError = {
      condition: 'amqp:not-found',
      description: `The messaging entity '${partitionDescription(address)}' could not be found.`,
    };
    if (!sameName(target.hub, identity.hubName)) return refuse(state, sender, what, notFound);
    const group = consumerGroups.find((g) => sameName(g, target.consumerGroup));
    if (!group || !core.d2c.partitionIds.includes(target.partitionId)) {
      return refuse(state, sender, what, notFound);
    }
    if (!state.claims.covers(addressPath(address), core.clock.now())) {
      return refuse(state, sender, what, {
        condition: 'amqp:unauthorized-access',
        description: `Unauthorized access: no valid token was put on $cbs for '${partitionDescription(address)}'.`,
      });
    }
    const epoch = readEpoch(sender.properties);
    if (epoch === 'invalid') {
      return refuse(state, sender, what, {
        condition: 'amqp:invalid-field',
        description: `The link property ${epochProperty} must be a long.`,
      });
    }
    let startSequenceNumber: number;
    try {
      const position = startPositionFromFilter(sender.source?.filter);
      startSequenceNumber = resolveStartSequenceNumber(core.d2c, target.partitionId, position);
    } catch (error) {
      if (!(error instanceof InvalidFilterError)) throw error;
      return refuse(state, sender, what, {
        condition: 'amqp:invalid-field',
        description: `Invalid start filter: ${error.message}`,
      });
    }
    const runtimeMetrics = asStringArray(sender.desired_capabilities).includes(
      runtimeMetricCapability,
    );
    const reader = new PartitionReader(sender, {
      d2c: core.d2c,
      partitionId: target.partitionId,
      startSequenceNumber,
      runtimeMetrics,
      now: () => core.clock.now(),
      onStolen: (description) => {
        forgetReader(state, sender);
        log.warn(`connection ${state.id}: ${what} detached: link stolen by a higher epoch`);
        sender.close({ condition: 'amqp:link:stolen', description });
      },
    });
    const admission = ownership.admit(group, target.partitionId, reader, epoch);
    if (!admission.admitted) {
      return refuse(state, sender, what, {
        condition: admission.condition,
        description: admission.description,
      });
    }
    state.readers.set(sender, { reader, release: admission.release });
    let set = readersByPartition.get(target.partitionId);
    if (!set) readersByPartition.set(target.partitionId, (set = new Set()));
    set.add(reader);
    acceptSender(sender, runtimeMetrics ? [runtimeMetricCapability] : []);
    reader.schedule();
  }

  function forgetReader(state: ConnectionState, sender: Sender): void {
    const entry = state.readers.get(sender);
    if (!entry) return;
    state.readers.delete(sender);
    entry.reader.stop();
    entry.release();
    readersByPartition.get(entry.reader.partitionId)?.delete(entry.reader);
  }

  /** Completes our side of an attach the client started: echo the termini, presettle when asked. */
  function acceptSender(sender: Sender, offeredCapabilities: string[]): void {
    sender.set_source({ address: addressOf(sender.source) });
    if (sender.target) sender.set_target({ address: addressOf(sender.target) });
    const local = (sender as unknown as { local: { attach: Record<string, unknown> } }).local
      .attach;
    // Event Hubs never redelivers; pre-settle unless the client insists on unsettled transfers.
    local.snd_settle_mode = sender.snd_settle_mode === 0 ? 0 : 1;
    // Event Hubs echoes the link properties (epoch, receiver name); Python azure-eventhub merges
    // the reply's properties into its own and fails on a reply without them.
    const remoteProperties: unknown = sender.properties;
    if (typeof remoteProperties === 'object' && remoteProperties !== null) {
      local.properties = remoteProperties;
    }
    if (offeredCapabilities.length > 0) local.offered_capabilities = offeredCapabilities;
  }

  function acceptReceiver(receiver: Receiver): void {
    receiver.set_target({ address: addressOf(receiver.target) });
    if (receiver.source) receiver.set_source({ address: addressOf(receiver.source) });
  }

  function findReplyLink(
    state: ConnectionState,
    kind: NodeKind,
    replyTo: unknown,
    session: unknown,
  ): ReplyLink | undefined {
    const candidates = state.replyLinks.filter((l) => l.kind === kind && l.sender.is_open());
    if (typeof replyTo === 'string') {
      const exact =
        candidates.find((l) => addressOf(l.sender.target) === replyTo) ??
        candidates.find((l) => l.sender.name === replyTo);
      if (exact) return exact;
    }
    return candidates.find((l) => l.sender.session === session) ?? candidates[0];
  }

  function sendReply(link: ReplyLink, reply: Message): void {
    link.pending.push(reply);
    flushReplies(link);
  }

  function flushReplies(link: ReplyLink): void {
    while (link.pending.length > 0 && link.sender.sendable()) {
      const next = link.pending.shift();
      if (next) link.sender.send(next);
    }
  }

  function onRequest(state: ConnectionState, receiver: Receiver, request: Message): void {
    const address = addressOf(receiver.target);
    const kind: NodeKind = isCbsNode(address) ? 'cbs' : 'management';
    const now = core.clock.now();
    const outcome =
      kind === 'cbs'
        ? handlePutToken(request, identity, state.claims, now)
        : handleManagementRequest(request, {
            identity,
            d2c: core.d2c,
            hostName: ctx.hostName,
            createdAt,
            claims: state.claims,
            now,
          });
    if (outcome.refusal)
      log.warn(
        `connection ${state.id}: refused ${kind === 'cbs' ? '$cbs' : '$management'} request: ${outcome.refusal}`,
      );
    const link = findReplyLink(state, kind, request.reply_to, receiver.session);
    if (!link) {
      log.warn(`connection ${state.id}: refused ${kind} request: no reply link is attached`);
      return;
    }
    sendReply(link, outcome.reply);
  }

  function closeConnectionState(state: ConnectionState): void {
    if (state.closed) return;
    state.closed = true;
    for (const sender of [...state.readers.keys()]) forgetReader(state, sender);
    state.replyLinks.length = 0;
    connections.delete(state);
  }

  function wire(state: ConnectionState): void {
    const { connection } = state;
    const guard =
      <T extends unknown[]>(name: string, fn: (...args: T) => void) =>
      (...args: T): void => {
        try {
          fn(...args);
        } catch (error) {
          log.error(
            `connection ${state.id}: ${name} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
          try {
            connection.close({ condition: 'amqp:internal-error', description: 'internal error' });
          } catch {
            state.socket.destroy();
          }
        }
      };

    connection.on(
      'sender_open',
      guard('attach', (context: EventContext) => {
        const sender = context.sender;
        if (!sender) return;
        const address = addressOf(sender.source);
        if (state.shared && !isEventsAddress(address)) return;
        sanitizeLinkName(sender);
        if (isCbsNode(address) || isManagementNode(address)) {
          acceptSender(sender, []);
          state.replyLinks.push({
            sender,
            kind: isCbsNode(address) ? 'cbs' : 'management',
            pending: [],
          });
          return;
        }
        openPartitionReader(state, sender, address);
      }),
    );
    connection.on(
      'receiver_open',
      guard('attach', (context: EventContext) => {
        const receiver = context.receiver;
        if (!receiver) return;
        const address = addressOf(receiver.target);
        if (state.shared && !isManagementNode(address)) return;
        if (isCbsNode(address) || isManagementNode(address)) {
          acceptReceiver(receiver);
          return;
        }
        refuse(state, receiver, `sender to ${JSON.stringify(addressPath(address))}`, {
          condition: 'amqp:not-implemented',
          description:
            "The IoT Hub's Event Hub-compatible endpoint is read-only: send device-to-cloud messages through a device client.",
        });
      }),
    );
    connection.on(
      'message',
      guard('request', (context: EventContext) => {
        const { receiver, message } = context;
        if (state.shared && !isManagementNode(addressOf(receiver?.target))) return;
        if (receiver && message) onRequest(state, receiver, message);
      }),
    );
    connection.on(
      'sendable',
      guard('flow', (context: EventContext) => {
        const sender = context.sender;
        if (!sender) return;
        const entry = state.readers.get(sender);
        if (entry) {
          entry.reader.pump();
          return;
        }
        const reply = state.replyLinks.find((l) => l.sender === sender);
        if (reply) flushReplies(reply);
      }),
    );
    connection.on(
      'sender_draining',
      guard('drain', (context: EventContext) => {
        const sender = context.sender;
        if (sender) state.readers.get(sender)?.reader.pump();
      }),
    );
    const onSenderGone = guard('detach', (context: EventContext) => {
      const sender = context.sender;
      if (!sender) return;
      forgetReader(state, sender);
      state.replyLinks = state.replyLinks.filter((l) => l.sender !== sender);
    });
    connection.on('sender_close', onSenderGone);
    connection.on('sender_error', () => undefined);
    connection.on('receiver_close', () => undefined);
    connection.on('receiver_error', () => undefined);
    connection.on('session_error', () => undefined);
    connection.on(
      'session_close',
      guard('end', (context: EventContext) => {
        for (const sender of [...state.readers.keys()]) {
          if (sender.session === context.session) forgetReader(state, sender);
        }
      }),
    );
    connection.on('connection_close', () => closeConnectionState(state));
    connection.on('connection_error', () => closeConnectionState(state));
    connection.on('disconnected', () => closeConnectionState(state));
    // On a shared connection the service adapter reports and handles connection failures.
    if (state.shared) return;
    connection.on('protocol_error', (error: unknown) => {
      log.warn(
        `connection ${state.id}: refused connection: ${error instanceof Error ? error.message.slice(0, 200) : 'protocol error'}`,
      );
      closeConnectionState(state);
      state.socket.destroy();
    });
    connection.on('error', (error: unknown) => {
      log.warn(
        `connection ${state.id}: connection error: ${error instanceof Error ? error.message.slice(0, 200) : 'unknown'}`,
      );
      closeConnectionState(state);
      state.socket.destroy();
    });
  }

  /** This endpoint's links on a connection the service adapter accepted (see shared-surface.ts). */
  function join(connection: Connection, socket: Duplex): SharedSession {
    const state: ConnectionState = {
      id: `#${++connectionCounter} (${remoteAddressOf(socket)}, AMQPS)`,
      connection,
      socket,
      claims: new ClaimSet(),
      replyLinks: [],
      readers: new Map(),
      shared: true,
      closed: closing,
    };
    if (!closing) connections.add(state);
    wire(state);
    socket.once('close', () => closeConnectionState(state));
    const issued = new WeakSet<CbsGrant>();
    return {
      ownsAddress: isEventsAddress,
      ownsGrant: (grant) => issued.has(grant),
      verify(request) {
        if (!isEventsAudience(request.audience, identity.hubName)) return undefined;
        const grant = verifyPutToken(request, identity, state.claims, core.clock.now());
        issued.add(grant);
        return grant;
      },
    };
  }

  return {
    join,
    handle(socket: Duplex): void {
      if (closing) {
        socket.destroy();
        return;
      }
      // server.ts logs the connection itself; refusals name it by number and peer.
      const id = `#${++connectionCounter} (${remoteAddressOf(socket)})`;
      socket.on('error', () => undefined);
      try {
        // Server-side options; rhea's typings only describe client ones.
        const serverOptions = {
          id: `events-${id}`,
          container_id: identity.hubName,
          max_frame_size: maxFrameSize,
        };
        const connection = container.create_connection(
          serverOptions as unknown as ConnectionOptions,
        ) as AcceptingConnection;
        const state: ConnectionState = {
          id,
          connection,
          socket,
          claims: new ClaimSet(),
          replyLinks: [],
          readers: new Map(),
          shared: false,
          closed: false,
        };
        connections.add(state);
        sendAllFields(connection);
        wire(state);
        socket.once('close', () => closeConnectionState(state));
        guardFrameSizes(socket, maxFrameSize, (reason) => {
          log.warn(`connection ${id}: refused connection: ${reason}`);
          closeConnectionState(state);
          socket.destroy();
        });
        connection.accept(socket);
      } catch (error) {
        log.error(
          `connection ${id}: could not accept: ${error instanceof Error ? error.message : String(error)}`,
        );
        socket.destroy();
      }
    },

    async close(): Promise<void> {
      closing = true;
      unsubscribe();
      // Shared connections belong to the service adapter, which closes them; only forget them.
      const open = [...connections].filter((state) => !state.shared);
      for (const state of connections) if (state.shared) closeConnectionState(state);
      await Promise.all(
        open.map(
          (state) =>
            new Promise<void>((resolve) => {
              const socket = state.socket;
              if (socket.destroyed) return resolve();
              const timer = setTimeout(() => socket.destroy(), 1000);
              timer.unref();
              socket.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              try {
                state.connection.close({
                  condition: 'amqp:connection:forced',
                  description: 'The local IoT Hub is shutting down.',
                });
                setImmediate(() => socket.end());
              } catch {
                socket.destroy();
              }
              closeConnectionState(state);
            }),
        ),
      );
    },
  };
}
