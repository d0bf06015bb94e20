/**
 * Assembles the local IoT Hub: data folder, TLS material, the core, the protocol adapters and the
 * listeners, and owns their lifecycle.
 *
 * Listeners:
 * - the TLS gateway (default 4443) serves HTTPS, AMQPS and MQTTS, told apart by their first bytes;
 * - the standard MQTTS (8883) and AMQPS (5671) ports, each going straight to its adapter;
 * - the Event Hub-compatible endpoint (default 5672), plain TCP; the same endpoint also answers on
 *   the AMQPS ports, on the service surface's connections, told apart by link address (for
 *   clients that only speak TLS and dial 5671, see amqp/shared-surface.ts).
 * On the gateway, an HTTP upgrade to `/$iothub/websocket` carries MQTT or AMQP over WebSockets
 * (./websocket.ts) to the same adapters as MQTTS and AMQPS.
 * Every listener sniffs before it hands a socket over, so garbage is turned away at the door and
 * never reaches a protocol parser.
 *
 * `startServer` runs named steps: data folder, TLS material, core, listeners (`ListenerSet`, with
 * the TLS handshake deadlines), routing of accepted connections (`ConnectionRouter`), adapters,
 * connection info, and `shutdown`. Each byte stream is watched for oversized frames once: AMQP by
 * the router's guard, MQTT by the MQTT adapter's own packet watcher.
 */
import type { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { BoundPorts, ConnectionInfo } from './connection-info';
import { buildConnectionString } from './connection-info';
import type { HubIdentity } from './config';
import { gatewayHostName, wellKnownHubIdentity } from './config';
import type { EmulatorContext, Logger, ProtocolAdapter } from './context';
import type { CoreOptions, IotHubCore } from './core/contracts';
import { createCore } from './core/create-core';
import { createServiceAdapter } from './amqp/service-adapter';
import type { SharedSurface } from './amqp/shared-surface';
import { createEventsAdapter } from './events/events-adapter';
import { createRegistryAdapter } from './http/registry-adapter';
import { prefixed } from './log';
import { createMqttAdapter } from './mqtt/mqtt-adapter';
import type { SniffedProtocol } from './sniff';
import { sniff } from './sniff';
import { peerAddress } from './peer-address';
import { ensureTlsMaterial, type TlsMaterial } from './tls';
import { createWebSocketGateway, type WebSocketGateway, type WebSocketProtocol } from './websocket';

/** `-1` turns the standard MQTTS / AMQPS listener off; `0` binds an ephemeral port. */
export interface PortOptions {
  gateway: number;
  mqtt: number;
  amqp: number;
  events: number;
}

export interface ServerOptions {
  /** Holds `tls/`, `connection.json` and (unless in memory) the durable state in `state/`. */
  dataDir: string;
  inMemory: boolean;
  /** Interface to bind, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  ports: PortOptions;
  partitions?: number;
  /** Consumer groups besides `$Default`. */
  consumerGroups?: readonly string[];
  identity?: HubIdentity;
  /** Passed through to the core (feedback batch delay, retention, default C2D TTL, limits). */
  core?: Omit<CoreOptions, 'dataDir' | 'partitionCount'>;
  /** A peer must finish the TLS handshake and send its first bytes within this time (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Largest AMQP frame / MQTT packet accepted before the connection is cut (default 4 MiB). */
  maxFrameBytes?: number;
  /** CAs that sign the certificates of `certificateAuthority` devices. */
  trustedDeviceCas?: readonly X509Certificate[];
  log: Logger;
}

export type { BoundPorts, ConnectionInfo };

export interface RunningServer {
  connection: ConnectionInfo;
  core: IotHubCore;
  /** Stops listening, closes every adapter and connection, then flushes and closes the core. */
  close(): Promise<void>;
}

/** A failure to start that names what is wrong (a port, a folder); never carries secrets. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

type AdapterName = 'registry' | 'mqtt' | 'service' | 'events';

/** What the server gives adapters besides their context. */
interface AdapterHooks {
  websockets: WebSocketGateway;
  /** The adapters made so far (the service surface shares its connections with `events`). */
  adapters: ReadonlyMap<AdapterName, ProtocolAdapter>;
}

/**
 * The wiring table: which adapter serves which surface. An adapter whose factory is missing is
 * reported at start and its connections are refused.
 */
const adapterFactories: Record<
  AdapterName,
  | ((
      ctx: EmulatorContext,
      options: ServerOptions,
      hooks: AdapterHooks,
    ) => ProtocolAdapter | Promise<ProtocolAdapter>)
  | undefined
> = {
  registry: (ctx, _options, hooks) =>
    createRegistryAdapter(ctx, { upgrade: hooks.websockets.upgrade }),
  mqtt: (ctx, options) => createMqttAdapter(ctx, { maxFrameBytes: options.maxFrameBytes }),
  service: (ctx, options, { adapters }) =>
    createServiceAdapter(ctx, {
      shared: () => asSharedSurface(adapters.get('events')),
      maxFrameBytes: options.maxFrameBytes,
    }),
  events: (ctx, options) =>
    createEventsAdapter(ctx, {
      consumerGroups: options.consumerGroups ?? [],
      maxFrameBytes: options.maxFrameBytes,
    }),
};

const adapterFor: Record<SniffedProtocol, AdapterName> = {
  http: 'registry',
  mqtt: 'mqtt',
  amqp: 'service',
};

interface ListenerSpec {
  name: string;
  port: number;
  tls: boolean;
  allowed: ReadonlySet<SniffedProtocol>;
  /** Where an accepted protocol goes; defaults to `adapterFor`. */
  route?: (protocol: SniffedProtocol) => AdapterName;
}

function asSharedSurface(adapter: ProtocolAdapter | undefined): SharedSurface | undefined {
  return adapter && 'join' in adapter ? (adapter as ProtocolAdapter & SharedSurface) : undefined;
}

const loopbackHosts = new Set(['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost']);

/** The host clients put in connection strings: `localhost` for loopback (the certificate covers it). */
export function publicHost(bindHost: string): string {
  return loopbackHosts.has(bindHost) ? 'localhost' : bindHost;
}

async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await fs.mkdir(dataDir, { recursive: true });
    const stat = await fs.stat(dataDir);
    if (!stat.isDirectory()) throw new Error('not a directory');
    // Permissions alone do not tell (root ignores them): prove it by writing.
    const probe = path.join(dataDir, `.write-probe-${process.pid}`);
    await fs.writeFile(probe, '');
    await fs.rm(probe);
    await fs.readdir(dataDir);
  } catch (error) {
    throw new StartupError(`data folder ${dataDir} is not readable and writable: ${reason(error)}`);
  }
}

function reason(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code}` : error.message;
  }
  return String(error);
}

function listen(server: net.Server, host: string, port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? 'address already in use'
          : error.code === 'EACCES'
            ? 'permission denied'
            : reason(error);
      reject(new StartupError(`cannot listen on ${host}:${port} (${name} port): ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

/** The options every step uses, with their defaults applied. */
interface ServerSettings {
  log: Logger;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
}

/** Step: the TLS certificate and key in `<dataDir>/tls` (made on first start). */
async function loadTlsMaterial(dataDir: string): Promise<TlsMaterial> {
  try {
    return await ensureTlsMaterial(dataDir);
  } catch (error) {
    throw new StartupError(
      `cannot prepare TLS material in ${path.join(dataDir, 'tls')}: ${reason(error)}`,
    );
  }
}

/** Step: the hub core, durable in `<dataDir>/state` unless in memory. */
async function openCore(options: ServerOptions, dataDir: string): Promise<IotHubCore> {
  const stateDir = path.join(dataDir, 'state');
  try {
    return await createCore({
      ...options.core,
      ...(options.inMemory ? {} : { dataDir: stateDir }),
      ...(options.partitions !== undefined ? { partitionCount: options.partitions } : {}),
    });
  } catch (error) {
    throw new StartupError(`cannot open the hub state in ${stateDir}: ${reason(error)}`);
  }
}

/** Which listeners to open: the gateway, the standard ports unless turned off, the events port. */
function listenerSpecs(ports: PortOptions): ListenerSpec[] {
  const specs: ListenerSpec[] = [
    {
      name: 'gateway',
      port: ports.gateway,
      tls: true,
      allowed: new Set<SniffedProtocol>(['http', 'amqp', 'mqtt']),
    },
  ];
  if (ports.mqtt !== -1) {
    specs.push({ name: 'mqtt', port: ports.mqtt, tls: true, allowed: new Set(['mqtt']) });
  }
  if (ports.amqp !== -1) {
    specs.push({ name: 'amqp', port: ports.amqp, tls: true, allowed: new Set(['amqp']) });
  }
  specs.push({
    name: 'events',
    port: ports.events,
    tls: false,
    allowed: new Set(['amqp']),
    route: () => 'events',
  });
  return specs;
}

/**
 * Where accepted connections go: each is sniffed, waits until the adapters are up, and is handed
 * to the adapter of its protocol — or refused while shutting down.
 */
class ConnectionRouter {
  readonly adapters = new Map<AdapterName, ProtocolAdapter>();
  closing = false;
  private markReady: () => void = () => {};
  private readonly ready = new Promise<void>((resolve) => {
    this.markReady = resolve;
  });

  constructor(private readonly settings: ServerSettings) {}

  /** Every adapter is made: connections that waited are handed over. */
  adaptersReady(): void {
    this.markReady();
  }

  async dispatch(spec: ListenerSpec, socket: Duplex): Promise<void> {
    const remote = peerAddress(socket);
    const result = await sniff(socket, {
      allowed: spec.allowed,
      timeoutMs: this.settings.handshakeTimeoutMs,
      plainTcp: !spec.tls,
    });
    if (result.kind === 'rejected') {
      this.settings.log.warn(`${spec.name}: refused connection from ${remote}: ${result.reason}`);
      socket.destroy();
      return;
    }
    await this.ready;
    const name = (spec.route ?? ((p: SniffedProtocol) => adapterFor[p]))(result.protocol);
    this.handOver(spec.name, result.protocol, name, socket, remote);
  }

  /**
   * A WebSocket's payload must start with its subprotocol's bytes (MQTT CONNECT, AMQP header) in
   * time, as a TLS socket must, or it is closed before an adapter holds it.
   */
  async dispatchWebSocket(
    protocol: WebSocketProtocol,
    stream: Duplex,
    remote: string,
  ): Promise<void> {
    const listener = 'gateway (WebSocket)';
    const result = await sniff(stream, {
      allowed: new Set([protocol]),
      timeoutMs: this.settings.handshakeTimeoutMs,
    });
    if (result.kind === 'rejected') {
      this.settings.log.warn(
        `${listener}: refused ${protocol} connection from ${remote}: ${result.reason}`,
      );
      stream.destroy();
      return;
    }
    this.handOver(listener, protocol, adapterFor[protocol], stream, remote);
  }

  /**
   * Gives a decrypted byte stream (a TLS socket, or a WebSocket's payload stream) to the adapter
   * `name`. An AMQP stream gets the frame-size guard in front; an MQTT stream is watched by the
   * MQTT adapter itself (which also needs its PUBACKs), so each stream is parsed once.
   */
  private handOver(
    listener: string,
    protocol: SniffedProtocol,
    name: AdapterName,
    stream: Duplex,
    remote: string,
  ): void {
    const { log } = this.settings;
    const adapter = this.adapters.get(name);
    if (this.closing || !adapter) {
      log.warn(
        `${listener}: refused ${protocol} connection from ${remote}: ${this.closing ? 'shutting down' : `the ${name} surface is not available`}`,
      );
      stream.destroy();
      return;
    }
    log.info(`${listener}: ${protocol} connection from ${remote} → ${name}`);
    // Each adapter guards its own stream's frames (one parse per stream), with `maxFrameBytes`.
    adapter.handle(stream);
  }
}

/**
 * Node's TLS handshake timeout only starts with the first ClientHello byte, so a peer that
 * connects and says nothing would be held forever: every raw connection gets its own deadline,
 * cleared once TLS is up (the sniff timeout then takes over). Keyed by the peer's address and
 * port, unique among a listener's open connections.
 */
class HandshakeDeadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly settings: ServerSettings) {}

  private static keyOf(socket: Partial<net.Socket>): string {
    return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}|${socket.localPort ?? ''}`;
  }

  arm(listener: string, raw: net.Socket): void {
    const key = HandshakeDeadlines.keyOf(raw);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.settings.log.warn(`${listener}: dropped ${peerAddress(raw)}: no TLS handshake in time`);
      raw.destroy();
    }, this.settings.handshakeTimeoutMs);
    this.timers.set(key, timer);
    raw.once('close', () => {
      if (this.timers.get(key) === timer) {
        clearTimeout(timer);
        this.timers.delete(key);
      }
    });
  }

  /** TLS is up on `socket`. */
  clear(socket: Duplex): void {
    const key = HandshakeDeadlines.keyOf(socket as Partial<net.Socket>);
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }
}

/** The listening sockets and every raw connection they accepted. */
class ListenerSet {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly deadlines: HandshakeDeadlines;

  constructor(
    private readonly settings: ServerSettings,
    private readonly material: TlsMaterial,
    private readonly router: ConnectionRouter,
  ) {
    this.deadlines = new HandshakeDeadlines(settings);
  }

  /** Step: opens every listener; returns the port each is bound to, by name. */
  async bind(specs: readonly ListenerSpec[], host: string): Promise<Map<string, number>> {
    const bound = new Map<string, number>();
    for (const spec of specs) {
      const server = this.create(spec);
      this.servers.push(server);
      bound.set(spec.name, await listen(server, host, spec.port, spec.name));
    }
    return bound;
  }

  /** Stops accepting; resolves once every listener is closed (after its connections end). */
  stopListening(): Promise<void> {
    return Promise.all(this.servers.map(closeServer)).then(() => undefined);
  }

  destroyConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private create(spec: ListenerSpec): net.Server {
    const { material, settings } = this;
    const accept = (socket: Duplex): void => this.accept(spec, socket);
    const server = spec.tls
      ? tls.createServer(
          {
            cert: material.cert,
            key: material.key,
            minVersion: 'TLSv1.2',
            handshakeTimeout: settings.handshakeTimeoutMs,
            // X.509 devices send a client certificate; SAS devices send none. The adapters decide
            // per device (emulator/auth/x509.ts), so the handshake itself refuses nobody.
            requestCert: true,
            rejectUnauthorized: false,
          },
          accept,
        )
      : net.createServer(accept);
    server.on('connection', (raw: net.Socket) => this.track(spec, raw));
    if (spec.tls) {
      server.on('tlsClientError', (error: Error, raw: tls.TLSSocket) => {
        settings.log.warn(
          `${spec.name}: TLS handshake from ${peerAddress(raw)} failed: ${error.message}`,
        );
      });
    }
    server.on('error', (error) =>
      settings.log.error(`${spec.name}: listener error: ${reason(error)}`),
    );
    return server;
  }

  /** A raw TCP connection (before TLS). */
  private track(spec: ListenerSpec, raw: net.Socket): void {
    raw.setNoDelay(true);
    this.sockets.add(raw);
    raw.once('close', () => this.sockets.delete(raw));
    if (this.router.closing) {
      raw.destroy();
      return;
    }
    if (spec.tls) this.deadlines.arm(spec.name, raw);
  }

  /** A connection ready for its first bytes (TLS terminated where the listener has it). */
  private accept(spec: ListenerSpec, socket: Duplex): void {
    // Keeps a late error (reset, TLS alert) from becoming an uncaught exception; adapters add
    // their own handling once they own the socket.
    socket.on('error', () => {});
    if (spec.tls) this.deadlines.clear(socket);
    void this.router.dispatch(spec, socket);
  }
}

/** Step: makes every adapter of the wiring table, in order (the service surface needs events). */
async function startAdapters(
  router: ConnectionRouter,
  options: ServerOptions,
  websockets: WebSocketGateway,
  contextFor: (surface: string) => EmulatorContext,
): Promise<void> {
  const { adapters } = router;
  try {
    for (const [name, factory] of Object.entries(adapterFactories) as [
      AdapterName,
      (typeof adapterFactories)[AdapterName],
    ][]) {
      if (!factory) {
        options.log.warn(
          `the ${name} surface is not part of this build; its connections are refused`,
        );
        continue;
      }
      adapters.set(name, await factory(contextFor(name), options, { websockets, adapters }));
    }
  } catch (error) {
    throw new StartupError(`cannot start the protocol adapters: ${reason(error)}`);
  }
}

/** Step: what `connection.json` holds; throws when the identity has no iothubowner policy. */
function connectionInfo(
  identity: HubIdentity,
  host: string,
  ports: BoundPorts,
  caFile: string,
): ConnectionInfo {
  const ownerPolicy = identity.policies.find((p) => p.name === 'iothubowner');
  const servicePolicy = identity.policies.find((p) => p.name === 'service') ?? ownerPolicy;
  if (!ownerPolicy || !servicePolicy) {
    throw new StartupError('the hub identity needs an iothubowner policy');
  }
  // The standard AMQPS port when served, else the gateway (which also speaks AMQPS).
  const tlsEventsPort = ports.amqp ?? ports.gateway;
  const service = {
    SharedAccessKeyName: servicePolicy.name,
    SharedAccessKey: servicePolicy.primaryKey,
  };
  return {
    serviceConnectionString: buildConnectionString({
      HostName: gatewayHostName(host, ports.gateway),
      SharedAccessKeyName: ownerPolicy.name,
      SharedAccessKey: ownerPolicy.primaryKey,
    }),
    eventsConnectionString: buildConnectionString({
      Endpoint: `sb://${host}:${ports.events}/`,
      ...service,
      EntityPath: identity.hubName,
      UseDevelopmentEmulator: 'true',
    }),
    eventsTlsConnectionString: buildConnectionString({
      Endpoint: `sb://${host}${tlsEventsPort === 5671 ? '' : `:${tlsEventsPort}`}/`,
      ...service,
      EntityPath: identity.hubName,
    }),
    eventsName: identity.hubName,
    caFile,
    ports,
  };
}

function boundPorts(bound: ReadonlyMap<string, number>): BoundPorts {
  return {
    gateway: bound.get('gateway') ?? 0,
    mqtt: bound.get('mqtt') ?? null,
    amqp: bound.get('amqp') ?? null,
    events: bound.get('events') ?? 0,
  };
}

/** What shutdown closes, in order. */
interface ServerParts {
  router: ConnectionRouter;
  listeners: ListenerSet;
  websockets: WebSocketGateway;
  core: IotHubCore;
  log: Logger;
}

/**
 * Step: shutdown. New connections are refused, listeners stop, adapters close their connections,
 * what is left is destroyed, then the core is flushed and closed.
 */
async function shutdown(parts: ServerParts): Promise<void> {
  const { router, listeners, websockets, core, log } = parts;
  router.closing = true;
  websockets.close();
  const serversClosed = listeners.stopListening();
  const results = await Promise.allSettled([...router.adapters.values()].map((a) => a.close()));
  for (const r of results) {
    if (r.status === 'rejected') log.error(`an adapter failed to close: ${reason(r.reason)}`);
  }
  listeners.destroyConnections();
  await serversClosed;
  await core.close();
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { log } = options;
  const identity = options.identity ?? wellKnownHubIdentity;
  const dataDir = path.resolve(options.dataDir);
  const settings: ServerSettings = {
    log,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    maxFrameBytes: options.maxFrameBytes ?? 4 * 1024 * 1024,
  };

  await prepareDataDir(dataDir);
  const material = await loadTlsMaterial(dataDir);
  const core = await openCore(options, dataDir);
  const router = new ConnectionRouter(settings);
  // MQTT and AMQP over WebSockets reach the adapters that serve them over TLS.
  const websockets = createWebSocketGateway({
    maxPayloadBytes: settings.maxFrameBytes,
    log: prefixed(log, 'websocket:'),
    accept: (protocol, stream, remote) => void router.dispatchWebSocket(protocol, stream, remote),
  });
  const listeners = new ListenerSet(settings, material, router);
  const closeAll = () => shutdown({ router, listeners, websockets, core, log });

  let ports: BoundPorts;
  try {
    ports = boundPorts(await listeners.bind(listenerSpecs(options.ports), options.host));
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }
  const host = publicHost(options.host);
  const contextFor = (surface: string): EmulatorContext => ({
    core,
    identity,
    hostName: gatewayHostName(host, ports.gateway),
    trustedDeviceCas: options.trustedDeviceCas ?? [],
    log: prefixed(log, `${surface}:`),
  });
  try {
    await startAdapters(router, options, websockets, contextFor);
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }
  router.adaptersReady();

  let connection: ConnectionInfo;
  try {
    connection = connectionInfo(identity, host, ports, material.files.caFile);
  } catch (error) {
    await closeAll();
    throw error;
  }
  let closed: Promise<void> | undefined;
  return { connection, core, close: () => (closed ??= closeAll()) };
}

/** Writes `connection.json` atomically, so a watcher never reads half of it. */
export async function writeConnectionFile(dataDir: string, info: ConnectionInfo): Promise<string> {
  const file = path.join(path.resolve(dataDir), 'connection.json');
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, `${JSON.stringify(info, null, 2)}\n`);
  await fs.rename(temp, file);
  return file;
}
