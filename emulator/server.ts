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
import { createAmqpFrameWatcher, createMqttPacketWatcher, guardFrames, sniff } from './sniff';
import { ensureTlsMaterial } from './tls';
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
  mqtt: (ctx) => createMqttAdapter(ctx),
  service: (ctx, _options, { adapters }) =>
    createServiceAdapter(ctx, { shared: () => asSharedSurface(adapters.get('events')) }),
  events: (ctx, options) =>
    createEventsAdapter(ctx, { consumerGroups: options.consumerGroups ?? [] }),
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

function remoteOf(socket: Duplex): string {
  const s = socket as Partial<net.Socket>;
  return s.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? '?'}` : 'unknown peer';
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { log } = options;
  const identity = options.identity ?? wellKnownHubIdentity;
  const dataDir = path.resolve(options.dataDir);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const maxFrameBytes = options.maxFrameBytes ?? 4 * 1024 * 1024;

  await prepareDataDir(dataDir);
  let material;
  try {
    material = await ensureTlsMaterial(dataDir);
  } catch (error) {
    throw new StartupError(
      `cannot prepare TLS material in ${path.join(dataDir, 'tls')}: ${reason(error)}`,
    );
  }

  const stateDir = path.join(dataDir, 'state');
  let core: IotHubCore;
  try {
    core = await createCore({
      ...options.core,
      ...(options.inMemory ? {} : { dataDir: stateDir }),
      ...(options.partitions !== undefined ? { partitionCount: options.partitions } : {}),
    });
  } catch (error) {
    throw new StartupError(`cannot open the hub state in ${stateDir}: ${reason(error)}`);
  }

  const specs: ListenerSpec[] = [
    {
      name: 'gateway',
      port: options.ports.gateway,
      tls: true,
      allowed: new Set<SniffedProtocol>(['http', 'amqp', 'mqtt']),
    },
  ];
  if (options.ports.mqtt !== -1) {
    specs.push({ name: 'mqtt', port: options.ports.mqtt, tls: true, allowed: new Set(['mqtt']) });
  }
  if (options.ports.amqp !== -1) {
    specs.push({ name: 'amqp', port: options.ports.amqp, tls: true, allowed: new Set(['amqp']) });
  }
  specs.push({
    name: 'events',
    port: options.ports.events,
    tls: false,
    allowed: new Set(['amqp']),
    route: () => 'events',
  });

  const adapters = new Map<AdapterName, ProtocolAdapter>();
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  let closing = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  const dispatch = async (spec: ListenerSpec, socket: Duplex): Promise<void> => {
    const remote = remoteOf(socket);
    const result = await sniff(socket, {
      allowed: spec.allowed,
      timeoutMs: handshakeTimeoutMs,
      plainTcp: !spec.tls,
    });
    if (result.kind === 'rejected') {
      log.warn(`${spec.name}: refused connection from ${remote}: ${result.reason}`);
      socket.destroy();
      return;
    }
    await ready;
    const name = (spec.route ?? ((p: SniffedProtocol) => adapterFor[p]))(result.protocol);
    handOver(spec.name, result.protocol, name, socket, remote);
  };

  /**
   * Gives a decrypted byte stream (a TLS socket, or a WebSocket's payload stream) to the adapter
   * `name`, with the frame-size guard of its protocol in front.
   */
  const handOver = (
    listener: string,
    protocol: SniffedProtocol,
    name: AdapterName,
    stream: Duplex,
    remote: string,
  ): void => {
    const adapter = adapters.get(name);
    if (closing || !adapter) {
      log.warn(
        `${listener}: refused ${protocol} connection from ${remote}: ${closing ? 'shutting down' : `the ${name} surface is not available`}`,
      );
      stream.destroy();
      return;
    }
    log.info(`${listener}: ${protocol} connection from ${remote} → ${name}`);
    adapter.handle(stream);
    if (protocol === 'amqp' || protocol === 'mqtt') {
      const watcher =
        protocol === 'amqp'
          ? createAmqpFrameWatcher(maxFrameBytes)
          : createMqttPacketWatcher(maxFrameBytes);
      guardFrames(stream, watcher, (why) =>
        log.warn(`${listener}: closed ${protocol} connection from ${remote}: ${why}`),
      );
    }
  };

  /**
   * A WebSocket's payload must start with its subprotocol's bytes (MQTT CONNECT, AMQP header) in
   * time, as a TLS socket must, or it is closed before an adapter holds it.
   */
  const dispatchWebSocket = async (
    protocol: WebSocketProtocol,
    stream: Duplex,
    remote: string,
  ): Promise<void> => {
    const listener = 'gateway (WebSocket)';
    const result = await sniff(stream, {
      allowed: new Set([protocol]),
      timeoutMs: handshakeTimeoutMs,
    });
    if (result.kind === 'rejected') {
      log.warn(`${listener}: refused ${protocol} connection from ${remote}: ${result.reason}`);
      stream.destroy();
      return;
    }
    handOver(listener, protocol, adapterFor[protocol], stream, remote);
  };

  // MQTT and AMQP over WebSockets reach the adapters that serve them over TLS.
  const websockets = createWebSocketGateway({
    maxPayloadBytes: maxFrameBytes,
    log: prefixed(log, 'websocket:'),
    accept: (protocol, stream, remote) => void dispatchWebSocket(protocol, stream, remote),
  });

  /**
   * Node's TLS handshake timeout only starts with the first ClientHello byte, so a peer that
   * connects and says nothing would be held forever: every raw connection gets its own deadline,
   * cleared once TLS is up (the sniff timeout then takes over). Keyed by the peer's address and
   * port, unique among a listener's open connections.
   */
  const handshakeDeadlines = new Map<string, NodeJS.Timeout>();
  const peerKey = (socket: Partial<net.Socket>) =>
    `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}|${socket.localPort ?? ''}`;

  const accept = (spec: ListenerSpec) => (socket: Duplex) => {
    // Keeps a late error (reset, TLS alert) from becoming an uncaught exception; adapters add
    // their own handling once they own the socket.
    socket.on('error', () => {});
    if (spec.tls) {
      const key = peerKey(socket as Partial<net.Socket>);
      clearTimeout(handshakeDeadlines.get(key));
      handshakeDeadlines.delete(key);
    }
    void dispatch(spec, socket);
  };

  const createListener = (spec: ListenerSpec): net.Server => {
    const server = spec.tls
      ? tls.createServer(
          {
            cert: material.cert,
            key: material.key,
            minVersion: 'TLSv1.2',
            handshakeTimeout: handshakeTimeoutMs,
            // X.509 devices send a client certificate; SAS devices send none. The adapters decide
            // per device (emulator/auth/x509.ts), so the handshake itself refuses nobody.
            requestCert: true,
            rejectUnauthorized: false,
          },
          accept(spec),
        )
      : net.createServer(accept(spec));
    server.on('connection', (raw: net.Socket) => {
      raw.setNoDelay(true);
      sockets.add(raw);
      raw.once('close', () => sockets.delete(raw));
      if (closing) {
        raw.destroy();
        return;
      }
      if (spec.tls) {
        const key = peerKey(raw);
        const timer = setTimeout(() => {
          handshakeDeadlines.delete(key);
          log.warn(`${spec.name}: dropped ${remoteOf(raw)}: no TLS handshake in time`);
          raw.destroy();
        }, handshakeTimeoutMs);
        handshakeDeadlines.set(key, timer);
        raw.once('close', () => {
          if (handshakeDeadlines.get(key) === timer) {
            clearTimeout(timer);
            handshakeDeadlines.delete(key);
          }
        });
      }
    });
    if (spec.tls) {
      server.on('tlsClientError', (error: Error, raw: tls.TLSSocket) => {
        log.warn(`${spec.name}: TLS handshake from ${remoteOf(raw)} failed: ${error.message}`);
      });
    }
    server.on('error', (error) => log.error(`${spec.name}: listener error: ${reason(error)}`));
    return server;
  };

  const closeAll = async (): Promise<void> => {
    closing = true;
    websockets.close();
    const serversClosed = Promise.all(servers.map(closeServer));
    const results = await Promise.allSettled([...adapters.values()].map((a) => a.close()));
    for (const r of results) {
      if (r.status === 'rejected') log.error(`an adapter failed to close: ${reason(r.reason)}`);
    }
    for (const socket of sockets) socket.destroy();
    await serversClosed;
    await core.close();
  };

  const bound = new Map<string, number>();
  try {
    for (const spec of specs) {
      const server = createListener(spec);
      servers.push(server);
      bound.set(spec.name, await listen(server, options.host, spec.port, spec.name));
    }
  } catch (error) {
    await closeAll().catch(() => {});
    throw error;
  }

  const ports: BoundPorts = {
    gateway: bound.get('gateway') ?? 0,
    mqtt: bound.get('mqtt') ?? null,
    amqp: bound.get('amqp') ?? null,
    events: bound.get('events') ?? 0,
  };
  const host = publicHost(options.host);
  const hostName = gatewayHostName(host, ports.gateway);
  const ctx = (surface: string): EmulatorContext => ({
    core,
    identity,
    hostName,
    trustedDeviceCas: options.trustedDeviceCas ?? [],
    log: prefixed(log, `${surface}:`),
  });

  try {
    for (const [name, factory] of Object.entries(adapterFactories) as [
      AdapterName,
      (typeof adapterFactories)[AdapterName],
    ][]) {
      if (!factory) {
        log.warn(`the ${name} surface is not part of this build; its connections are refused`);
        continue;
      }
      adapters.set(name, await factory(ctx(name), options, { websockets, adapters }));
    }
  } catch (error) {
    await closeAll().catch(() => {});
    throw new StartupError(`cannot start the protocol adapters: ${reason(error)}`);
  }
  markReady();

  const ownerPolicy = identity.policies.find((p) => p.name === 'iothubowner');
  const servicePolicy = identity.policies.find((p) => p.name === 'service') ?? ownerPolicy;
  if (!ownerPolicy || !servicePolicy) {
    await closeAll();
    throw new StartupError('the hub identity needs an iothubowner policy');
  }
  // The standard AMQPS port when served, else the gateway (which also speaks AMQPS).
  const tlsEventsPort = ports.amqp ?? ports.gateway;
  const connection: ConnectionInfo = {
    serviceConnectionString: buildConnectionString({
      HostName: hostName,
      SharedAccessKeyName: ownerPolicy.name,
      SharedAccessKey: ownerPolicy.primaryKey,
    }),
    eventsConnectionString: buildConnectionString({
      Endpoint: `sb://${host}:${ports.events}/`,
      SharedAccessKeyName: servicePolicy.name,
      SharedAccessKey: servicePolicy.primaryKey,
      EntityPath: identity.hubName,
      UseDevelopmentEmulator: 'true',
    }),
    eventsTlsConnectionString: buildConnectionString({
      Endpoint: `sb://${host}${tlsEventsPort === 5671 ? '' : `:${tlsEventsPort}`}/`,
      SharedAccessKeyName: servicePolicy.name,
      SharedAccessKey: servicePolicy.primaryKey,
      EntityPath: identity.hubName,
    }),
    eventsName: identity.hubName,
    caFile: material.files.caFile,
    ports,
  };

  let closed: Promise<void> | undefined;
  return {
    connection,
    core,
    close: () => (closed ??= closeAll()),
  };
}

/** Writes `connection.json` atomically, so a watcher never reads half of it. */
export async function writeConnectionFile(dataDir: string, info: ConnectionInfo): Promise<string> {
  const file = path.join(path.resolve(dataDir), 'connection.json');
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, `${JSON.stringify(info, null, 2)}\n`);
  await fs.rename(temp, file);
  return file;
}
