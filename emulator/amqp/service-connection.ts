/**
 * One connection of the IoT Hub service surface, with its state made explicit: its `$cbs` node,
 * the device links authenticated on it, its feedback links, and the Event Hub-compatible links
 * it may also carry (see shared-surface.ts). Each link a client attaches is dispatched by
 * address: `$cbs` and shared-surface links are served elsewhere, device links by
 * ./device-links.ts, and the service's own links here: the C2D sender (./c2d-receiver.ts), the
 * feedback receiver (./feedback-link.ts) and the always-empty file notification receiver.
 */
import type { Duplex } from 'node:stream';
import type { Connection, EventContext, Receiver, Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import { C2dReceiver } from './c2d-receiver';
import {
  attachCbs,
  isCbsAddress,
  type CbsEndpoint,
  type CbsGrant,
  type PutTokenVerifier,
} from './cbs';
import { describeError } from './describe-error';
import { createDeviceLinks, type DeviceLinks } from './device-links';
import { DeviceCertificates } from './device-x509';
import { serveFeedback, type FeedbackLink } from './feedback-link';
import { remoteAddress } from './rhea-server';
import {
  deviceboundAddress,
  feedbackAddress,
  fileNotificationsAddress,
  sameAddress,
} from './service-messages';
import type { SharedSession, SharedSurface } from './shared-surface';

/** How long `close()` lets a client acknowledge the close frame before the socket is destroyed. */
const closeGraceMs = 1_000;

export interface ServiceConnectionOptions {
  ctx: EmulatorContext;
  verify: PutTokenVerifier;
  peer: string;
  socket: Duplex;
  connection: Connection;
  /** The surface that shares this connection, if any. */
  shared: SharedSurface | undefined;
  /** Told once when the connection is gone. */
  onGone(connection: ServiceConnection): void;
}

export class ServiceConnection {
  readonly peer: string;
  readonly socket: Duplex;
  readonly connection: Connection;
  /** Resolves once the socket has closed. */
  readonly closed: Promise<void>;
  private readonly ctx: EmulatorContext;
  private readonly shared: SharedSession | undefined;
  private readonly cbs: CbsEndpoint;
  private readonly deviceLinks: DeviceLinks;
  private readonly c2d: C2dReceiver;
  private readonly feedbackLinks = new Set<FeedbackLink>();
  private gone = false;

  /** Call right after accepting: joins the shared surface, then serves `$cbs`, in that order. */
  constructor(private readonly options: ServiceConnectionOptions) {
    ({ ctx: this.ctx, peer: this.peer, socket: this.socket } = options);
    this.connection = options.connection;
    this.closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.shared = options.shared?.join(this.connection, this.socket);
    this.cbs = this.serveCbs();
    this.deviceLinks = createDeviceLinks({
      ctx: this.ctx,
      cbs: this.cbs,
      certificates: new DeviceCertificates(this.ctx, this.socket),
      refuse: (link, condition, description) => this.refuse(link, condition, description),
    });
    this.c2d = new C2dReceiver(this.ctx, this.peer, () => this.gone);
  }

  /** Registers the connection's handlers (after the `$cbs` and shared-surface ones). */
  wire(): void {
    const { connection, peer, ctx } = this;
    void this.closed.then(() => this.forget(''));
    connection.on('connection_open', () => ctx.log.info(`connection from ${peer} opened`));
    connection.on('receiver_open', (context: EventContext) => {
      if (context.receiver) this.onReceiverOpen(context.receiver);
    });
    connection.on('sender_open', (context: EventContext) => {
      if (context.sender) this.onSenderOpen(context.sender);
    });
    // Handled here so rhea neither prints them nor re-emits them on the container.
    for (const event of ['receiver_close', 'sender_close', 'receiver_error', 'sender_error']) {
      connection.on(event, () => undefined);
    }
    connection.on('connection_error', (context: EventContext) => {
      ctx.log.warn(`${peer}: connection error: ${describeError(context.error)}`);
    });
    connection.on('protocol_error', (error: unknown) => {
      ctx.log.warn(`${peer}: protocol error: ${describeError(error)}`);
    });
    connection.on('error', (error: unknown) => ctx.log.warn(`${peer}: ${describeError(error)}`));
    connection.on('disconnected', (context: EventContext) => {
      this.forget(context.error ? describeError(context.error) : '');
    });
  }

  /** Forgets the connection's links; idempotent. */
  forget(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    for (const link of this.feedbackLinks) link.dispose();
    this.feedbackLinks.clear();
    this.deviceLinks.close();
    this.options.onGone(this);
    this.ctx.log.info(`connection from ${this.peer} closed${reason ? `: ${reason}` : ''}`);
  }

  /** Closes with `amqp:connection:forced`, waits a moment for the peer, then drops the socket. */
  async shutDown(): Promise<void> {
    try {
      this.connection.close({
        condition: 'amqp:connection:forced',
        description: 'the local IoT Hub is shutting down',
      });
    } catch {
      // The socket may already be gone; destroying it below is all that is left to do.
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, closeGraceMs);
      timer.unref();
    });
    await Promise.race([this.closed, grace]);
    if (timer) clearTimeout(timer);
    this.socket.destroy();
    this.forget('emulator shutting down');
  }

  private serveCbs(): CbsEndpoint {
    const { shared } = this;
    const { verify } = this.options;
    const { log } = this.ctx;
    return attachCbs(this.connection, {
      verify: shared ? (request) => shared.verify(request) ?? verify(request) : verify,
      onDenied: (_request, statusCode, description) => {
        log.warn(`${this.peer}: put-token refused (${statusCode}): ${description}`);
      },
      onError: (error) => log.error(`${this.peer}: put-token failed: ${describeError(error)}`),
    });
  }

  /** True when the link is served elsewhere on this connection (`$cbs`, shared, device). */
  private servedElsewhere(link: Sender | Receiver, address: string | undefined): boolean {
    if (isCbsAddress(address) || this.shared?.ownsAddress(address)) return true;
    return link.is_sender()
      ? this.deviceLinks.onSenderOpen(link as Sender, address)
      : this.deviceLinks.onReceiverOpen(link as Receiver, address);
  }

  private onReceiverOpen(receiver: Receiver): void {
    const address = remoteAddress(receiver);
    if (this.servedElsewhere(receiver, address) || !this.authorized(receiver)) return;
    if (!sameAddress(address, deviceboundAddress)) {
      const description = `cannot send to ${JSON.stringify(address ?? null)}`;
      return this.refuse(receiver, 'amqp:not-implemented', description);
    }
    this.c2d.serve(receiver, address);
  }

  private onSenderOpen(sender: Sender): void {
    const address = remoteAddress(sender);
    if (this.servedElsewhere(sender, address) || !this.authorized(sender)) return;
    if (sameAddress(address, fileNotificationsAddress)) {
      // The emulator has no file upload endpoint, so there never is a notification; an empty
      // link is the truth. Refusing it would be worse: azure-iothub 1.16.6 resolves
      // getFileNotificationReceiver() on the attach and then fails close() on the detach.
      sender.set_source({ address: address ?? fileNotificationsAddress });
      return;
    }
    if (!sameAddress(address, feedbackAddress)) {
      const description = `cannot receive from ${JSON.stringify(address ?? null)}`;
      return this.refuse(sender, 'amqp:not-implemented', description);
    }
    this.serveFeedbackLink(sender, address);
  }

  private serveFeedbackLink(sender: Sender, address: string | undefined): void {
    sender.set_source({ address: address ?? feedbackAddress });
    const { core, identity, log } = this.ctx;
    const link = serveFeedback(sender, core.feedback, identity.hubName, log);
    this.feedbackLinks.add(link);
    sender.on('sender_close', () => {
      link.dispose();
      this.feedbackLinks.delete(link);
    });
  }

  /**
   * Service links need a policy's grant: neither a device token (it grants only that device's
   * links) nor an Event Hub grant of the shared surface opens them.
   */
  private authorized(link: Sender | Receiver): boolean {
    const serviceGrant = (g: CbsGrant) => g.deviceId === undefined && !this.shared?.ownsGrant(g);
    if (this.cbs.findGrant(this.ctx.core.clock.now(), serviceGrant)) return true;
    this.refuse(link, 'amqp:unauthorized-access', 'put a valid token on $cbs first');
    return false;
  }

  private refuse(link: Sender | Receiver, condition: string, description: string): void {
    this.ctx.log.warn(`${this.peer}: link refused (${condition}): ${description}`);
    link.close({ condition, description });
  }
}
