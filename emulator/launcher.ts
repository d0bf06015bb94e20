/**
 * The one way to run a hub as a child process: the package's own CLI (`local-iothub`), started
 * with Node, waited for until its `connection.json` is written, stopped by signal. Tests, the
 * benchmarks and tooling all start hub processes through this.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionInfo } from './connection-info';
import { parseConnectionInfo } from './connection-info';

/** The bin of this package (built JavaScript next to this file). */
export const hubCliPath = path.join(__dirname, 'cli.js');

/** A hub's time under a caller's control (`--manual-clock` / `manualClock`). */
export interface HubClock {
  /** The hub's current time, epoch ms. */
  now(): Promise<number>;
  /** Moves the hub's time forward, firing every timer due on the way; resolves with the new time. */
  advance(ms: number): Promise<number>;
}

export interface LaunchHubOptions {
  /** Holds TLS material, `connection.json` and state; created if missing. */
  dataDir: string;
  /** Default true: every listener on a free loopback port. */
  ephemeralPorts?: boolean;
  inMemory?: boolean;
  partitions?: number;
  /** `--manual-clock`: the hub's time moves only through `hub.clock.advance(ms)`. */
  manualClock?: boolean;
  /** More CLI arguments, appended last. */
  args?: readonly string[];
  /** Node options before the script, e.g. `--require` of a preload. */
  nodeArgs?: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long to wait for `connection.json` (default 30 s). */
  startTimeoutMs?: number;
  /** Every chunk of the hub's stdout and stderr, as it comes. */
  onOutput?: (chunk: Buffer) => void;
}

export interface HubExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface HubProcess {
  connection: ConnectionInfo;
  dataDir: string;
  pid: number | undefined;
  /** Present when launched with `manualClock`. */
  clock?: HubClock;
  /** Sends the signal (default SIGTERM) and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<HubExit>;
  /** What the process wrote to stdout and stderr so far (the last 64 KiB). */
  output(): string;
}

/** CLI arguments putting every listener on a free loopback port. */
export const ephemeralPortArgs: readonly string[] = [
  '--host',
  '127.0.0.1',
  ...['--port', '--mqtt-port', '--amqp-port', '--events-port'].flatMap((flag) => [flag, '0']),
];

const outputLimit = 64 * 1024;

function cliArguments(options: LaunchHubOptions): string[] {
  return [
    ...(options.nodeArgs ?? []),
    hubCliPath,
    '--data',
    options.dataDir,
    ...(options.ephemeralPorts === false ? [] : ephemeralPortArgs),
    ...(options.inMemory ? ['--in-memory'] : []),
    ...(options.partitions !== undefined ? ['--partitions', String(options.partitions)] : []),
    ...(options.manualClock ? ['--manual-clock'] : []),
    ...(options.args ?? []),
  ];
}

/** The control endpoint's clock calls (see control.ts). */
export function remoteHubClock(controlUrl: string): HubClock {
  const call = async (method: string, route: string): Promise<number> => {
    const response = await fetch(`${controlUrl}${route}`, { method });
    const body = (await response.json()) as { now?: number; error?: string };
    if (!response.ok || typeof body.now !== 'number') {
      throw new Error(`hub clock: HTTP ${response.status} ${body.error ?? ''}`.trim());
    }
    return body.now;
  };
  return {
    now: () => call('GET', '/clock'),
    advance: (ms) => call('POST', `/clock/advance?ms=${Math.max(0, Math.round(ms))}`),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads `connection.json` until it is there and whole; undefined while it is not. */
async function tryReadConnection(file: string): Promise<ConnectionInfo | undefined> {
  try {
    return parseConnectionInfo(await readFile(file, 'utf8'));
  } catch {
    return undefined; // not written yet (the hub writes it atomically once every listener is up)
  }
}

/** Starts `local-iothub` and resolves once its `connection.json` is written. */
export async function launchHub(options: LaunchHubOptions): Promise<HubProcess> {
  if (!existsSync(hubCliPath)) throw new Error(`${hubCliPath} is missing: build the package first`);
  mkdirSync(options.dataDir, { recursive: true });
  const connectionFile = path.join(options.dataDir, 'connection.json');
  // A file left from an earlier run would name ports nobody listens on.
  await rm(connectionFile, { force: true });
  const child = spawn(process.execPath, cliArguments(options), {
    cwd: options.cwd ?? process.cwd(),
    // stdin stays a pipe: a `--require`d parent watch may end the hub when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-outputLimit);
    options.onOutput?.(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exitedWith: HubExit | undefined;
  const exited = new Promise<HubExit>((resolve) => {
    child.once('exit', (code, signal) => resolve((exitedWith = { code, signal })));
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    // The CLI gives itself 15 s to shut down; never wait beyond that.
    const backstop = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited.finally(() => clearTimeout(backstop));
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exitedWith) {
      throw new Error(
        `local-iothub exited (code ${exitedWith.code}, signal ${exitedWith.signal}) before it was ready:\n${output}`,
      );
    }
    const connection = await tryReadConnection(connectionFile);
    if (connection) {
      const clock = connection.control ? remoteHubClock(connection.control.url) : undefined;
      const base = { connection, dataDir: options.dataDir, pid: child.pid, stop, exited };
      return { ...base, ...(clock ? { clock } : {}), output: () => output };
    }
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`local-iothub did not write ${connectionFile} in time:\n${output}`);
    }
    await sleep(50);
  }
}
