/**
 * A hub in the calling process: the whole server (listeners, adapters, core) on ephemeral loopback
 * ports by default, with an optional manual clock the caller moves itself.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HubIdentity } from './config';
import type { ConnectionInfo } from './connection-info';
import type { Logger } from './context';
import type { CoreOptions, IotHubCore } from './core/contracts';
import { FakeClock } from './core/clock';
import type { HubClock } from './launcher';
import type { PortOptions } from './server';

export interface StartHubOptions {
  /** TLS material and `connection.json` (and state unless in memory); default: a temp folder, removed on close. */
  dataDir?: string;
  /** Default true. */
  inMemory?: boolean;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default: every listener on an ephemeral port. */
  ports?: Partial<PortOptions>;
  partitions?: number;
  consumerGroups?: readonly string[];
  identity?: HubIdentity;
  /** Time stands still until `hub.clock.advance(ms)` (starting at the wall clock's time). */
  manualClock?: boolean;
  /** Feedback batch delay, retention, default C2D TTL, limits. */
  core?: Omit<CoreOptions, 'dataDir' | 'partitionCount' | 'clock'>;
  /** Default: silent. */
  log?: Logger;
}

export interface InProcessHub {
  connection: ConnectionInfo;
  dataDir: string;
  /** The hub's core, for assertions on its state. */
  core: IotHubCore;
  /** Present when started with `manualClock`. */
  clock?: HubClock;
  /** Stops listening, closes every connection, flushes the state (and removes a temp folder). */
  stop(): Promise<void>;
}

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

function manualHubClock(clock: FakeClock): HubClock {
  return {
    now: () => Promise.resolve(clock.now()),
    advance: (ms) => {
      clock.advance(ms);
      return Promise.resolve(clock.now());
    },
  };
}

export async function startHub(options: StartHubOptions = {}): Promise<InProcessHub> {
  // Loaded here, not at the top: the protocol stack imports aedes, an ES module.
  const { startServer, writeConnectionFile } = await import('./server');
  const temp = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'local-iothub-'));
  const clock = options.manualClock ? new FakeClock(Date.now()) : undefined;
  const server = await startServer({
    dataDir,
    inMemory: options.inMemory ?? true,
    host: options.host ?? '127.0.0.1',
    ports: { gateway: 0, mqtt: 0, amqp: 0, events: 0, ...options.ports },
    ...(options.partitions !== undefined ? { partitions: options.partitions } : {}),
    ...(options.consumerGroups ? { consumerGroups: options.consumerGroups } : {}),
    ...(options.identity ? { identity: options.identity } : {}),
    core: { ...options.core, ...(clock ? { clock } : {}) },
    log: options.log ?? silent,
  });
  await writeConnectionFile(dataDir, server.connection);
  return {
    connection: server.connection,
    dataDir,
    core: server.core,
    ...(clock ? { clock: manualHubClock(clock) } : {}),
    stop: async () => {
      await server.close();
      if (temp) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
