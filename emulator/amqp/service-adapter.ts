/**
 * The IoT Hub service surface over AMQP (what azure-iothub's `Client` uses): CBS put-token,
 * cloud-to-device sends on `/messages/devicebound`, and delivery feedback on
 * `/messages/serviceBound/feedback`. Device links (`/devices/{id}/…`, azure-iot-device-amqp) are
 * dispatched to ./device-links.ts on the same connection. It only translates; queues, TTLs and feedback live in the
 * core. `server.ts` hands it decrypted sockets that start with the AMQP (or SASL) header.
 */
import type { Duplex } from 'node:stream';
import {
  create_container,
  type AmqpError,
  type Connection,
  type Delivery,
  type EventContext,
  type Receiver,
  type Sender,
} from 'rhea';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import { HubError } from '../core/contracts';
import { attachCbs, isCbsAddress, type CbsEndpoint, type CbsGrant } from './cbs';
import { hubTokenVerifier } from './device-auth';
import { createDeviceLinks, type DeviceLinks } from './device-links';
import { DeviceCertificates } from './device-x509';
import { serveFeedback, type FeedbackLink } from './feedback-link';
import {
  acceptAmqpConnection,
  describePeer,
  guardFrameSizes,
  messageFields,
  remoteAddress,
  sendAllFields,
} from './rhea-server';
import type { SharedSession, SharedSurface } from './shared-surface';
import {
  deviceboundAddress,
  feedbackAddress,
  fileNotificationsAddress,
  rejectionCondition,
  sameAddress,
  toC2DMessage,
} from './service-messages';

/** Advertised in `open`; larger frames are refused (see `guardFrameSizes`). */
const maxFrameSize = 256 * 1024;
/** IoT Hub advertises 240 s; clients send heartbeats at half of it. */
const idleTimeoutMs = 240_000;
/** Credit the C2D link keeps granting; settlement is what paces the sender. */
const c2dCreditWindow = 100;
/** How long `close()` lets a client acknowledge the close frame before the socket is destroyed. */
const closeGraceMs = 1_000;

interface ServiceConnection {
  peer: string;
  socket: Duplex;
  connection: Connection;
  feedbackLinks: Set<FeedbackLink>;
  /** The Event Hub-compatible links this connection may also carry (see shared-surface.ts). */
  shared: SharedSession | undefined;
  /** Links of devices authenticated on this connection. */
  deviceLinks?: DeviceLinks;
  gone: boolean;
  /** Resolves once the socket has closed. */
  closed: Promise<void>;
}

export interface ServiceAdapterOptions {
  /** Another surface served on the same connections, resolved when a connection arrives. */
  shared?: () => SharedSurface | undefined;
}

export function createServiceAdapter(
  ctx: EmulatorContext,
  options: ServiceAdapterOptions = {},
): ProtocolAdapter {
  const container = create_container({ id: ctx.identity.hubName });
  const connections = new Set<ServiceConnection>();
  const verify = hubTokenVerifier(ctx);

  // rhea re-emits errors nobody handled on its container; an EventEmitter 'error' without a
  // listener would throw and take the process down.
  container.on('error', (error: unknown) => {
    ctx.log.warn(describeError(error));
  });

  const refuse = (
    sc: ServiceConnection,
    link: Sender | Receiver,
    condition: string,
    description: string,
  ): void => {
    ctx.log.warn(`${sc.peer}: link refused (${condition}): ${description}`);
    link.close({ condition, description });
  };

  const authorized = (
    sc: ServiceConnection,
    cbs: CbsEndpoint,
    link: Sender | Receiver,
  ): boolean => {
    // Service links need a policy's grant: neither a device token (it grants only that device's
    // links) nor an Event Hub grant of the shared surface opens them.
    const serviceGrant = (g: CbsGrant) => g.deviceId === undefined && !sc.shared?.ownsGrant(g);
    if (cbs.findGrant(ctx.core.clock.now(), serviceGrant)) return true;
    refuse(sc, link, 'amqp:unauthorized-access', 'put a valid token on $cbs first');
    return false;
  };

  const settle = (sc: ServiceConnection, delivery: Delivery, error?: AmqpError): void => {
    // A pre-settled send expects no outcome; a gone connection cannot carry one.
    if (sc.gone || delivery.remote_settled) return;
    try {
      if (error) delivery.reject(error);
      else delivery.accept();
    } catch (settleError) {
      ctx.log.warn(`${sc.peer}: could not settle a C2D delivery: ${describeError(settleError)}`);
    }
  };

  const receiveC2D = async (
    sc: ServiceConnection,
    message: Record<string, unknown>,
    delivery: Delivery,
  ): Promise<void> => {
    let deviceId: string | undefined;
    try {
      const translated = toC2DMessage(message);
      deviceId = translated.deviceId;
      await ctx.core.c2d.enqueue(translated.deviceId, translated.input);
      settle(sc, delivery);
    } catch (error) {
      const code = error instanceof HubError ? error.code : 'ServerError';
      const description = error instanceof HubError ? error.message : 'internal error';
      const target = deviceId === undefined ? '' : ` to device ${JSON.stringify(deviceId)}`;
      if (error instanceof HubError) {
        ctx.log.warn(`${sc.peer}: C2D message${target} rejected: ${code}: ${description}`);
      } else {
        ctx.log.error(`${sc.peer}: C2D message${target} failed: ${describeError(error)}`);
      }
      settle(sc, delivery, { condition: rejectionCondition(code), description });
    }
  };

  const onReceiverOpen = (sc: ServiceConnection, cbs: CbsEndpoint, receiver: Receiver): void => {
    const address = remoteAddress(receiver);
    if (isCbsAddress(address) || sc.shared?.ownsAddress(address)) return;
    if (sc.deviceLinks?.onReceiverOpen(receiver, address)) return;
    if (!authorized(sc, cbs, receiver)) return;
    if (!sameAddress(address, deviceboundAddress)) {
      refuse(
        sc,
        receiver,
        'amqp:not-implemented',
        `cannot send to ${JSON.stringify(address ?? null)}`,
      );
      return;
    }
    receiver.set_target({ address: address ?? deviceboundAddress });
    receiver.on('message', (context: EventContext) => {
      const { message, delivery } = context;
      if (!message || !delivery) return;
      void receiveC2D(sc, messageFields(message), delivery);
    });
  };

  const onSenderOpen = (sc: ServiceConnection, cbs: CbsEndpoint, sender: Sender): void => {
    const address = remoteAddress(sender);
    if (isCbsAddress(address) || sc.shared?.ownsAddress(address)) return;
    if (sc.deviceLinks?.onSenderOpen(sender, address)) return;
    if (!authorized(sc, cbs, sender)) return;
    if (sameAddress(address, fileNotificationsAddress)) {
      // The emulator has no file upload endpoint, so there never is a notification; an empty
      // link is the truth. Refusing it would be worse: azure-iothub 1.16.6 resolves
      // getFileNotificationReceiver() on the attach and then fails close() on the detach.
      sender.set_source({ address: address ?? fileNotificationsAddress });
      return;
    }
    if (!sameAddress(address, feedbackAddress)) {
      refuse(
        sc,
        sender,
        'amqp:not-implemented',
        `cannot receive from ${JSON.stringify(address ?? null)}`,
      );
      return;
    }
    sender.set_source({ address: address ?? feedbackAddress });
    const link = serveFeedback(sender, ctx.core.feedback, ctx.identity.hubName, ctx.log);
    sc.feedbackLinks.add(link);
    sender.on('sender_close', () => {
      link.dispose();
      sc.feedbackLinks.delete(link);
    });
  };

  const forget = (sc: ServiceConnection, reason: string): void => {
    if (sc.gone) return;
    sc.gone = true;
    for (const link of sc.feedbackLinks) link.dispose();
    sc.feedbackLinks.clear();
    sc.deviceLinks?.close();
    connections.delete(sc);
    ctx.log.info(`connection from ${sc.peer} closed${reason ? `: ${reason}` : ''}`);
  };

  const handle = (socket: Duplex): void => {
    const peer = describePeer(socket);
    // Must precede rhea's own 'data' listener so an oversized frame is never buffered.
    guardFrameSizes(socket, maxFrameSize, (reason) => {
      ctx.log.warn(`${peer}: dropping connection: ${reason}`);
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let connection: Connection;
    try {
      connection = acceptAmqpConnection(container, socket, {
        container_id: ctx.identity.hubName,
        hostname: ctx.hostName,
        max_frame_size: maxFrameSize,
        idle_time_out: idleTimeoutMs,
        // Settlement waits for the core (durable enqueue, explicit feedback accept).
        receiver_options: { autoaccept: false, credit_window: c2dCreditWindow },
        sender_options: {},
      });
    } catch (error) {
      ctx.log.error(`${peer}: cannot serve AMQP: ${describeError(error)}`);
      socket.destroy();
      return;
    }
    sendAllFields(connection);
    const sc: ServiceConnection = {
      peer,
      socket,
      connection,
      feedbackLinks: new Set(),
      shared: options.shared?.()?.join(connection, socket),
      gone: false,
      closed,
    };
    connections.add(sc);
    void closed.then(() => forget(sc, ''));

    const { shared } = sc;
    const cbs = attachCbs(connection, {
      verify: shared ? (request) => shared.verify(request) ?? verify(request) : verify,
      onDenied: (request, statusCode, description) => {
        ctx.log.warn(`${peer}: put-token refused (${statusCode}): ${description}`);
      },
      onError: (error) => {
        ctx.log.error(`${peer}: put-token failed: ${describeError(error)}`);
      },
    });
    sc.deviceLinks = createDeviceLinks({
      ctx,
      cbs,
      certificates: new DeviceCertificates(ctx, socket),
      refuse: (link, condition, description) => refuse(sc, link, condition, description),
    });
    connection.on('connection_open', () => {
      ctx.log.info(`connection from ${peer} opened`);
    });
    connection.on('receiver_open', (context: EventContext) => {
      if (context.receiver) onReceiverOpen(sc, cbs, context.receiver);
    });
    connection.on('sender_open', (context: EventContext) => {
      if (context.sender) onSenderOpen(sc, cbs, context.sender);
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
    connection.on('error', (error: unknown) => {
      ctx.log.warn(`${peer}: ${describeError(error)}`);
    });
    connection.on('disconnected', (context: EventContext) => {
      forget(sc, context.error ? describeError(context.error) : '');
    });
  };

  const close = async (): Promise<void> => {
    const closing = [...connections].map(async (sc) => {
      try {
        sc.connection.close({
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
      await Promise.race([sc.closed, grace]);
      if (timer) clearTimeout(timer);
      sc.socket.destroy();
      forget(sc, 'emulator shutting down');
    });
    await Promise.all(closing);
  };

  return { handle, close };
}

/** Error text for logs: the message and AMQP condition, never a payload. */
function describeError(error: unknown): string {
  if (error instanceof Error) {
    const condition = (error as Error & { condition?: unknown }).condition;
    return typeof condition === 'string' ? `${condition}: ${error.message}` : error.message;
  }
  if (typeof error === 'object' && error !== null) {
    const { condition, description } = error as { condition?: unknown; description?: unknown };
    if (typeof condition === 'string') {
      return typeof description === 'string' ? `${condition}: ${description}` : condition;
    }
  }
  return String(error);
}
