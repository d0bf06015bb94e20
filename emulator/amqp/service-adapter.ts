/**
 * The IoT Hub service surface over AMQP (what azure-iothub's `Client` uses): CBS put-token,
 * cloud-to-device sends on `/messages/devicebound`, and delivery feedback on
 * `/messages/serviceBound/feedback`. Device links (`/devices/{id}/…`, azure-iot-device-amqp) are
 * dispatched to ./device-links.ts on the same connection. It only translates; queues, TTLs and
 * feedback live in the core. `server.ts` hands it decrypted sockets that start with the AMQP (or
 * SASL) header; this file accepts and closes connections, each an `ServiceConnection`
 * (./service-connection.ts) that dispatches its links.
 */
import type { Duplex } from 'node:stream';
import { create_container, type Container } from 'rhea';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import { peerAddress } from '../peer-address';
import type { PutTokenVerifier } from './cbs';
import { describeError } from './describe-error';
import { hubTokenVerifier } from './device-auth';
import { guardFrameSizes } from './frame-guard';
import { acceptAmqpConnection, sendAllFields } from './rhea-server';
import { ServiceConnection } from './service-connection';
import type { SharedSurface } from './shared-surface';

/** Advertised in `open`; larger frames are refused (see amqp/frame-guard.ts). */
const maxFrameSize = 256 * 1024;
/** IoT Hub advertises 240 s; clients send heartbeats at half of it. */
const idleTimeoutMs = 240_000;
/** Credit the C2D link keeps granting; settlement is what paces the sender. */
const c2dCreditWindow = 100;

export interface ServiceAdapterOptions {
  /** Another surface served on the same connections, resolved when a connection arrives. */
  shared?: () => SharedSurface | undefined;
  /** The server's frame limit: frames above the smaller of it and ours are refused. */
  maxFrameBytes?: number;
}

class ServiceAdapter implements ProtocolAdapter {
  private readonly container: Container;
  private readonly connections = new Set<ServiceConnection>();
  private readonly verify: PutTokenVerifier;
  private readonly frameLimit: number;

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly options: ServiceAdapterOptions,
  ) {
    this.container = create_container({ id: ctx.identity.hubName });
    this.verify = hubTokenVerifier(ctx);
    this.frameLimit = Math.min(maxFrameSize, options.maxFrameBytes ?? maxFrameSize);
    // rhea re-emits errors nobody handled on its container; an EventEmitter 'error' without a
    // listener would throw and take the process down.
    this.container.on('error', (error: unknown) => {
      ctx.log.warn(describeError(error));
    });
  }

  handle(socket: Duplex): void {
    const { ctx } = this;
    const peer = peerAddress(socket);
    // Must precede rhea's own 'data' listener so an oversized frame is never buffered.
    guardFrameSizes(socket, this.frameLimit, (reason) => {
      ctx.log.warn(`${peer}: dropping connection: ${reason}`);
    });
    let connection;
    try {
      connection = acceptAmqpConnection(this.container, socket, {
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
    const sc = new ServiceConnection({
      ctx,
      verify: this.verify,
      peer,
      socket,
      connection,
      shared: this.options.shared?.(),
      onGone: (gone) => this.connections.delete(gone),
    });
    this.connections.add(sc);
    sc.wire();
  }

  async close(): Promise<void> {
    await Promise.all([...this.connections].map((sc) => sc.shutDown()));
  }
}

export function createServiceAdapter(
  ctx: EmulatorContext,
  options: ServiceAdapterOptions = {},
): ProtocolAdapter {
  return new ServiceAdapter(ctx, options);
}
