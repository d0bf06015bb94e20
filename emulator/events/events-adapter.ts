/**
 * The Event Hub-compatible endpoint of the local IoT Hub: plain AMQP 1.0 (rhea) for
 * `UseDevelopmentEmulator=true` connection strings. `server.ts` owns the listener and hands each
 * accepted socket to `handle`. What it serves:
 * - SASL ANONYMOUS and MSSBCBS; CBS put-token per link audience (./cbs.ts, on amqp/cbs.ts);
 * - `$management` READ for the hub and its partitions (./management.ts);
 * - receivers on `<hub>/ConsumerGroups/<cg>/Partitions/<p>` with start filters, epochs and
 *   runtime metrics, fed from the core's D2C log as credit allows (./partition-sender.ts).
 * The endpoint is read-only, like IoT Hub's: links that would send events are refused.
 * Each connection is an `EventsConnection` (./events-connection.ts); this file only accepts,
 * joins and closes them.
 */
import type { Duplex } from 'node:stream';
import { create_container, type Connection, type Container } from 'rhea';
import type { CbsGrant } from '../amqp/cbs';
import { guardFrameSizes } from '../amqp/frame-guard';
import { acceptAmqpConnection, sendAllFields } from '../amqp/rhea-server';
import type { SharedSession, SharedSurface } from '../amqp/shared-surface';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import { peerAddress } from '../peer-address';
import { verifyPutToken } from './cbs';
import { isEventsAudience } from './entity-address';
import { EventsConnection, isEventsAddress, type EventsServices } from './events-connection';
import { PartitionSenders } from './partition-sender';
import { enableEventsSasl } from './sasl';

export { isEventsAddress } from './events-connection';

export interface EventsAdapterOptions {
  /** Consumer groups besides `$Default`. */
  consumerGroups: readonly string[];
  /** The server's frame limit: frames above the smaller of it and ours are refused. */
  maxFrameBytes?: number;
}

/** Advertised in our open frame and enforced on incoming frames; requests and tokens are small. */
const maxFrameSize = 1024 * 1024;
/** How long `close()` lets a client acknowledge the close frame before the socket is destroyed. */
const closeGraceMs = 1000;

class EventsEndpoint implements ProtocolAdapter, SharedSurface {
  private readonly container: Container;
  private readonly connections = new Set<EventsConnection>();
  private readonly services: EventsServices;
  private readonly frameLimit: number;
  private counter = 0;
  private closing = false;

  constructor(
    private readonly ctx: EmulatorContext,
    options: EventsAdapterOptions,
  ) {
    this.container = create_container({ id: `${ctx.identity.hubName}-events` });
    enableEventsSasl(this.container.sasl_server_mechanisms as Record<string, unknown>);
    // rhea re-emits unhandled link, session and connection errors on the container; without a
    // listener Node would throw them. They are already handled per connection.
    this.container.on('error', () => undefined);
    this.frameLimit = Math.min(maxFrameSize, options.maxFrameBytes ?? maxFrameSize);
    this.services = {
      ctx,
      partitions: new PartitionSenders(ctx, ['$Default', ...options.consumerGroups]),
      createdAt: ctx.core.clock.now(),
      onClosed: (connection) => this.connections.delete(connection),
    };
  }

  /** A plain-AMQP connection of our own. */
  handle(socket: Duplex): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // server.ts logs the connection itself; refusals name it by number and peer.
    const id = `#${++this.counter} (${peerAddress(socket, 'a stream')})`;
    socket.on('error', () => undefined);
    let state: EventsConnection | undefined;
    // Before rhea's own 'data' listener, so an oversized frame is never buffered.
    guardFrameSizes(socket, this.frameLimit, (reason) => {
      this.ctx.log.warn(`connection ${id}: refused connection: ${reason}`);
      state?.close();
    });
    try {
      const connection = acceptAmqpConnection(this.container, socket, {
        id: `events-${id}`,
        container_id: this.ctx.identity.hubName,
        max_frame_size: maxFrameSize,
      });
      sendAllFields(connection);
      state = this.adopt({ id, connection, socket, shared: false });
    } catch (error) {
      this.ctx.log.error(
        `connection ${id}: could not accept: ${error instanceof Error ? error.message : String(error)}`,
      );
      socket.destroy();
    }
  }

  /** This endpoint's links on a connection the service adapter accepted (see shared-surface.ts). */
  join(connection: Connection, socket: Duplex): SharedSession {
    const id = `#${++this.counter} (${peerAddress(socket, 'a stream')}, AMQPS)`;
    const state = this.adopt({ id, connection, socket, shared: true });
    const { identity, core } = this.ctx;
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

  async close(): Promise<void> {
    this.closing = true;
    this.services.partitions.close();
    // Shared connections belong to the service adapter, which closes them; only forget them.
    const own = [...this.connections].filter((state) => !state.shared);
    for (const state of [...this.connections]) if (state.shared) state.close();
    await Promise.all(own.map((state) => closeGracefully(state)));
  }

  private adopt(options: ConstructorParameters<typeof EventsConnection>[1]): EventsConnection {
    const state = new EventsConnection(this.services, options);
    // A connection joined while the endpoint closes is never served.
    if (this.closing) state.markClosed();
    else this.connections.add(state);
    state.wire();
    return state;
  }
}

/** Closes an endpoint-owned connection with `amqp:connection:forced`, then its socket. */
function closeGracefully(state: EventsConnection): Promise<void> {
  return new Promise<void>((resolve) => {
    const socket = state.socket;
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => socket.destroy(), closeGraceMs);
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
    state.close();
  });
}

export function createEventsAdapter(
  ctx: EmulatorContext,
  options: EventsAdapterOptions,
): ProtocolAdapter & SharedSurface {
  return new EventsEndpoint(ctx, options);
}
