/**
 * Devices over MQTT 3.1.1 (server.ts terminates TLS and hands over sockets): an aedes broker
 * whose hooks enforce IoT Hub's rules for devices. aedes does the protocol; this file only wires
 * its hooks and events to one handler per operation, as aedes' own hooks are laid out:
 * - ./connect.ts — `preConnect` and `authenticate` (CONNACK 1, 3, 5);
 * - ./publish.ts — `authorizePublish`: telemetry, twin requests and method responses;
 * - ./subscribe.ts — `authorizeSubscribe` and the subscribe/unsubscribe events;
 * - ./session-registry.ts — who is connected, takeovers, C2D delivery per connection;
 * - ./direct-publisher.ts — `authorizeForward`: nothing published through the broker reaches a
 *   device, only what this adapter sends to one connection (C2D messages, twin replies, desired
 *   patches, method calls; twin and method traffic is handled by ./twin-methods.ts).
 * Each socket's bytes pass one watcher (./frame-watcher.ts) that enforces the packet-size limit and
 * reports PUBACKs; server.ts adds no second MQTT guard.
 */
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { Client } from 'aedes';
import { hubHostCheck } from '../auth/hosts';
import { peerAddress } from '../peer-address';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import { quote } from './device-session';
import { ConnectHandler } from './connect';
import { DirectPublisher } from './direct-publisher';
import { MqttFrameWatcher } from './frame-watcher';
import { guarded, PendingWork } from './guard';
import { PublishHandler } from './publish';
import { DeviceSessionRegistry } from './session-registry';
import { SubscribeHandler } from './subscribe';
import { TwinMethodHandler } from './twin-methods';

/** IoT Hub's limit for one device-to-cloud message (body and properties). */
export const maxMessageBytes = 256 * 1024;
/** Largest MQTT packet accepted: a maximal message plus room for the topic and its bag. */
export const maxPacketBytes = maxMessageBytes + 64 * 1024;
/** C2D messages in flight per connection (delivered, not yet PUBACKed). */
const c2dWindow = 8;

export interface MqttAdapterOptions {
  /** The server's frame limit; the packet limit is the smaller of it and `maxPacketBytes`. */
  maxFrameBytes?: number;
}

/** The adapter's parts: explicit state (registry, publisher, pending work) and the handlers. */
interface MqttParts {
  registry: DeviceSessionRegistry;
  publisher: DirectPublisher;
  pending: PendingWork;
  twinsAndMethods: TwinMethodHandler;
  connect: ConnectHandler;
  publish: PublishHandler;
  subscribe: SubscribeHandler;
}

function createParts(ctx: EmulatorContext): MqttParts {
  const { core, log } = ctx;
  const pending = new PendingWork();
  const track = pending.track;
  const publisher = new DirectPublisher(log);
  const twinsAndMethods = new TwinMethodHandler({
    core,
    log,
    publish: (client, topic, payload) => publisher.publish(client, topic, payload, 0, undefined),
    track,
  });
  const registry = new DeviceSessionRegistry({
    core,
    log,
    publisher,
    sessionClosed: (client, session) => twinsAndMethods.onDisconnect(client, session.deviceId),
  });
  const connect = new ConnectHandler({
    core,
    log,
    registry,
    namesThisHub: hubHostCheck(ctx.hostName, ctx.identity.hubName),
    trustedDeviceCas: ctx.trustedDeviceCas ?? [],
    c2dWindow,
    track,
  });
  const publish = new PublishHandler({
    core,
    log,
    registry,
    twinsAndMethods,
    maxMessageBytes,
    track,
  });
  const subscribe = new SubscribeHandler({ log, registry, twinsAndMethods });
  return { registry, publisher, pending, twinsAndMethods, connect, publish, subscribe };
}

/** aedes' connection events, each handed to the part that owns it. */
function listen(broker: Aedes, parts: MqttParts, ctx: EmulatorContext): void {
  const { log } = ctx;
  const { registry, subscribe } = parts;
  broker.on(
    'client',
    guarded(log, 'registering a connection', (c: Client) => registry.connected(c)),
  );
  broker.on(
    'clientDisconnect',
    guarded(log, 'unregistering a connection', (c: Client) => registry.disconnected(c)),
  );
  broker.on('subscribe', guarded(log, 'a subscription', subscribe.subscribed.bind(subscribe)));
  broker.on(
    'unsubscribe',
    guarded(log, 'an unsubscription', subscribe.unsubscribed.bind(subscribe)),
  );
  broker.on('clientError', (client, error) => {
    if (!registry.wasDroppedByUs(client)) {
      log.info(`device ${quote(client.id ?? '')} (${registry.remoteOf(client)}): ${error.message}`);
    }
  });
  broker.on('connectionError', (client, error) => {
    if (!registry.wasDroppedByUs(client)) {
      log.info(`dropped connection from ${registry.remoteOf(client)}: ${error.message}`);
    }
  });
}

/**
 * Hands a socket to aedes with the one watcher its bytes pass: it cuts a packet over `limit` as
 * soon as its header arrives and reports PUBACKs to the connection's session.
 */
function attach(
  broker: Aedes,
  parts: MqttParts,
  ctx: EmulatorContext,
  socket: Duplex,
  limit: number,
): void {
  const { log } = ctx;
  const { registry } = parts;
  const remote = peerAddress(socket, 'unknown address');
  // PUBACKs and C2D publishes are tiny writes a device waits for: Nagle's algorithm would
  // hold each one back until the previous segment is acknowledged.
  const tcp = socket as Duplex & { setNoDelay?: (noDelay: boolean) => unknown };
  if (typeof tcp.setNoDelay === 'function') tcp.setNoDelay(true);
  const client = broker.handle(socket);
  registry.noteRemote(client, remote);
  const watcher = new MqttFrameWatcher(limit, {
    onPuback: guarded(log, 'a PUBACK', (packetId: number) =>
      registry.sessionOf(client)?.onPuback(packetId),
    ),
    onViolation: (reason) => {
      registry.markDropped(client);
      log.warn(`dropped connection from ${remote}: ${reason}`);
      socket.destroy();
    },
  });
  // With aedes' 'readable' listener in control, 'data' only reports what aedes reads.
  socket.on('data', (chunk: Buffer) => watcher.push(chunk));
}

export async function createMqttAdapter(
  ctx: EmulatorContext,
  options: MqttAdapterOptions = {},
): Promise<ProtocolAdapter> {
  const { core, log } = ctx;
  const parts = createParts(ctx);
  const { registry, publisher, connect, publish, subscribe } = parts;
  const limit = Math.min(maxPacketBytes, options.maxFrameBytes ?? maxPacketBytes);
  const broker = await Aedes.createBroker({
    preConnect: connect.preConnect,
    authenticate: connect.authenticate,
    authorizePublish: publish.authorizePublish,
    authorizeSubscribe: subscribe.authorizeSubscribe,
    authorizeForward: (client, packet) => publisher.authorizeForward(client, packet),
  });
  listen(broker, parts, ctx);
  const stopC2D = core.c2d.onAvailable(
    guarded(log, 'C2D delivery', (deviceId: string) => registry.deliverTo(deviceId)),
  );
  const stopRegistry = core.registry.onDeviceChanged(
    guarded(log, 'a registry change', (deviceId: string) => registry.recheck(deviceId)),
  );
  return {
    handle: (socket) => attach(broker, parts, ctx, socket, limit),
    async close() {
      stopC2D();
      stopRegistry();
      parts.twinsAndMethods.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await parts.pending.settled();
    },
  };
}
