/**
 * One AMQP connection of the Event Hub-compatible endpoint, with its state made explicit: the
 * audiences granted on it (`claims`), its `$cbs` and `$management` nodes, and the partition
 * links it holds. `wire` registers one handler per rhea event; each does one thing.
 *
 * A connection is either the endpoint's own (plain AMQP, `UseDevelopmentEmulator=true`) or
 * joined onto a service-surface connection (the AMQPS ports, see amqp/shared-surface.ts): then
 * only this endpoint's links are ours, and `$cbs` and the connection's lifecycle belong to the
 * service adapter.
 */
import type { Duplex } from 'node:stream';
import type { Connection, EventContext, Message, Receiver, Sender } from 'rhea';
import { CbsNode } from '../amqp/cbs';
import { ReplyLinks } from '../amqp/reply-links';
import type { EmulatorContext } from '../context';
import { ClaimSet, eventHubCbsPolicy } from './cbs';
import { addressPath, isCbsNode, isManagementNode, parsePartitionAddress } from './entity-address';
import { acceptReceiver, acceptSender, addressOf, sanitizeLinkName } from './link-termini';
import { ManagementNode } from './management';
import type { AmqpError, LinkOrigin, PartitionSenders } from './partition-sender';

/** The addresses this endpoint serves on a shared connection: partitions and `$management`. */
export function isEventsAddress(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (isManagementNode(address) || parsePartitionAddress(address) !== undefined)
  );
}

/** What every connection of the endpoint shares. */
export interface EventsServices {
  ctx: EmulatorContext;
  partitions: PartitionSenders;
  /** ms since the epoch the hub was "created" (the endpoint's start). */
  createdAt: number;
  /** Told once when the connection is gone. */
  onClosed(connection: EventsConnection): void;
}

export interface EventsConnectionOptions {
  id: string;
  connection: Connection;
  socket: Duplex;
  shared: boolean;
}

const readOnly: AmqpError = {
  condition: 'amqp:not-implemented',
  description:
    "The IoT Hub's Event Hub-compatible endpoint is read-only: send device-to-cloud messages through a device client.",
};

export class EventsConnection implements LinkOrigin {
  readonly id: string;
  readonly connection: Connection;
  readonly socket: Duplex;
  readonly shared: boolean;
  readonly claims = new ClaimSet();
  private readonly cbs: CbsNode;
  private readonly management: ManagementNode;
  /** Senders of this connection that feed a partition reader. */
  private readonly partitionLinks = new Set<Sender>();
  private closed = false;

  constructor(
    private readonly services: EventsServices,
    options: EventsConnectionOptions,
  ) {
    ({ id: this.id, connection: this.connection, socket: this.socket } = options);
    this.shared = options.shared;
    const { ctx } = services;
    const now = () => ctx.core.clock.now();
    const onRefused = (node: string) => (refusal: string) =>
      ctx.log.warn(`connection ${this.id}: refused ${node} request: ${refusal}`);
    this.cbs = new CbsNode(
      eventHubCbsPolicy(ctx.identity, this.claims, now, onRefused('$cbs')),
      new ReplyLinks({ holdUntilAttached: false }),
    );
    this.management = new ManagementNode(
      {
        identity: ctx.identity,
        d2c: ctx.core.d2c,
        hostName: ctx.hostName,
        createdAt: services.createdAt,
        claims: this.claims,
      },
      now,
      onRefused('$management'),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  refuse(link: Sender | Receiver, what: string, error: AmqpError): void {
    this.services.ctx.log.warn(`connection ${this.id}: refused ${what}: ${error.description}`);
    link.close(error);
  }

  /** Registers the handlers; a shared connection leaves failures to the service adapter. */
  wire(): void {
    const on = (event: string, name: string, handler: (context: EventContext) => void) =>
      this.connection.on(event, this.guarded(name, handler));
    on('sender_open', 'attach', (c) => c.sender && this.onSenderOpen(c.sender));
    on('receiver_open', 'attach', (c) => c.receiver && this.onReceiverOpen(c.receiver));
    on('message', 'request', (c) => this.onMessage(c.receiver, c.message));
    on('sendable', 'flow', (c) => c.sender && this.onSendable(c.sender));
    on('sender_draining', 'drain', (c) => c.sender && this.services.partitions.pump(c.sender));
    on('sender_close', 'detach', (c) => c.sender && this.onSenderGone(c.sender));
    on('session_close', 'end', (c) => this.onSessionClose(c.session));
    for (const event of ['sender_error', 'receiver_close', 'receiver_error', 'session_error']) {
      this.connection.on(event, () => undefined);
    }
    for (const event of ['connection_close', 'connection_error', 'disconnected']) {
      this.connection.on(event, () => this.close());
    }
    this.socket.once('close', () => this.close());
    if (!this.shared) this.wireFailures();
  }

  /** Forgets the connection's links and state; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sender of this.partitionLinks) this.services.partitions.forget(sender);
    this.partitionLinks.clear();
    this.cbs.replies.clear();
    this.management.replies.clear();
    this.services.onClosed(this);
  }

  /** Marks a connection joined while the endpoint closes: it never serves anything. */
  markClosed(): void {
    this.closed = true;
  }

  private onSenderOpen(sender: Sender): void {
    const address = addressOf(sender.source);
    if (this.shared && !isEventsAddress(address)) return;
    sanitizeLinkName(sender);
    if (isCbsNode(address) || isManagementNode(address)) {
      acceptSender(sender, []);
      (isCbsNode(address) ? this.cbs : this.management).replies.add(sender);
      return;
    }
    this.partitionLinks.add(sender);
    this.services.partitions.open(this, sender, address);
  }

  private onReceiverOpen(receiver: Receiver): void {
    const address = addressOf(receiver.target);
    if (this.shared && !isManagementNode(address)) return;
    if (isCbsNode(address) || isManagementNode(address)) return acceptReceiver(receiver);
    this.refuse(receiver, `sender to ${JSON.stringify(addressPath(address))}`, readOnly);
  }

  private onMessage(receiver: Receiver | undefined, request: Message | undefined): void {
    const address = addressOf(receiver?.target);
    if (this.shared && !isManagementNode(address)) return;
    if (!receiver || !request) return;
    const cbs = isCbsNode(address);
    const sent = cbs
      ? this.cbs.answer(request, receiver.session)
      : this.management.answer(request, receiver.session);
    const kind = cbs ? 'cbs' : 'management';
    const warnIfDropped = (delivered: boolean) => {
      if (delivered) return;
      this.services.ctx.log.warn(
        `connection ${this.id}: refused ${kind} request: no reply link is attached`,
      );
    };
    if (typeof sent === 'boolean') warnIfDropped(sent);
    else void sent.then(warnIfDropped);
  }

  private onSendable(sender: Sender): void {
    if (this.services.partitions.pump(sender)) return;
    this.cbs.replies.flush(sender);
    this.management.replies.flush(sender);
  }

  private onSenderGone(sender: Sender): void {
    this.services.partitions.forget(sender);
    this.partitionLinks.delete(sender);
    this.cbs.replies.remove(sender);
    this.management.replies.remove(sender);
  }

  private onSessionClose(session: unknown): void {
    for (const sender of [...this.partitionLinks]) {
      if (sender.session !== session) continue;
      this.services.partitions.forget(sender);
      this.partitionLinks.delete(sender);
    }
  }

  private wireFailures(): void {
    const fail = (what: string, fallback: string) => (error: unknown) => {
      const reason = error instanceof Error ? error.message.slice(0, 200) : fallback;
      this.services.ctx.log.warn(`connection ${this.id}: ${what}: ${reason}`);
      this.close();
      this.socket.destroy();
    };
    this.connection.on('protocol_error', fail('refused connection', 'protocol error'));
    this.connection.on('error', fail('connection error', 'unknown'));
  }

  /** A handler that closes the connection with internal-error instead of throwing into rhea. */
  private guarded(name: string, handler: (context: EventContext) => void) {
    return (context: EventContext): void => {
      try {
        handler(context);
      } catch (error) {
        this.services.ctx.log.error(
          `connection ${this.id}: ${name} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        try {
          this.connection.close({
            condition: 'amqp:internal-error',
            description: 'internal error',
          });
        } catch {
          this.socket.destroy();
        }
      }
    };
  }
}
