/**
 * The one way to run a hub as a child process: the package's own CLI (`local-iothub`), started
 * with Node, waited for until its `connection.json` is written, stopped by signal. Tests, the
 * benchmarks, tooling and a supervisor such as this repository's local stack (`npm start`: own
 * process group, output relayed, exit reported; `detached` and `onSpawn`) all start hub processes
 * through this.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionInfo } from './connection-info';
import { parseConnectionInfo } from './connection-info';
import { holderAlive, readLockHolder } from './data-lock';

/** The bin of this package (built JavaScript next to this file). */
export const hubCliPath = path.join(__dirname, 'cli.js');

/**
 * Node options that make a Node process end when the process that spawned it (with a pipe as
 * stdin) ends, however that ends: the preload ./end-with-parent.ts, built next to this file.
 */
export function endWithParentArgs(): string[] {
  return ['--require', path.join(__dirname, 'end-with-parent.js')];
}

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
  /**
   * The hub ends when the calling process ends, even by SIGKILL (`endWithParentArgs`): a test
   * worker or supervisor that dies leaves no hub behind.
   */
  endWithParent?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** How long to wait for `connection.json` (default 30 s). */
  startTimeoutMs?: number;
  /** Every chunk of the hub's stdout and stderr, as it comes. */
  onOutput?: (chunk: Buffer) => void;
  /**
   * Its own process group, so that a Ctrl-C in the caller's terminal reaches only the caller,
   * which then stops the hub in an order of its choosing (the local stack stops the app first).
   */
  detached?: boolean;
  /**
   * Called with the process the moment it is spawned, before `launchHub` returns its promise: a
   * supervisor takes it under watch from the start (relays its output, reports its exit, stops it
   * when something beside it fails to start). Its stdout and stderr are read by the launcher too.
   */
  onSpawn?: (child: ChildProcessWithoutNullStreams) => void;
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
    ...(options.endWithParent ? endWithParentArgs() : []),
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

/** One version of a file: `connection.json` is replaced (written aside, renamed), never edited. */
interface FileVersion {
  ino: number;
  mtimeMs: number;
}

function fileVersion(file: string): FileVersion | undefined {
  try {
    const { ino, mtimeMs } = statSync(file);
    return { ino, mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * Makes way for the new hub's `connection.json`. A file left by an earlier run names ports nobody
 * listens on, so it goes; but while a live hub holds the folder (the CLI's `lock.json`), the file
 * is that hub's and stays: the new hub will exit, refused by the lock, and the running hub's
 * clients keep finding it. Returns the version of a file left in place, so that the wait does not
 * take it for the new hub's. Synchronous, so that the spawn (and `onSpawn`) happen in the call.
 */
function makeWayForConnectionFile(dataDir: string, file: string): FileVersion | undefined {
  const holder = readLockHolder(path.join(dataDir, 'lock.json'));
  if (holder && holderAlive(holder)) return fileVersion(file);
  rmSync(file, { force: true });
  return undefined;
}

/** Reads `connection.json` once it is there, whole and not `stale`; undefined until then. */
async function tryReadConnection(
  file: string,
  stale: FileVersion | undefined,
): Promise<ConnectionInfo | undefined> {
  if (stale) {
    const current = fileVersion(file);
    if (!current || (current.ino === stale.ino && current.mtimeMs === stale.mtimeMs)) {
      return undefined;
    }
  }
  try {
    return parseConnectionInfo(await readFile(file, 'utf8'));
  } catch {
    return undefined; // not written yet (the hub writes it atomically once every listener is up)
  }
}

/** The spawned CLI: its output so far, its exit, and a stop. */
interface SpawnedHub {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  readonly exited: Promise<HubExit>;
  /** How it exited, once it has. */
  exit: () => HubExit | undefined;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

function spawnHub(options: LaunchHubOptions): SpawnedHub {
  const child = spawn(process.execPath, cliArguments(options), {
    cwd: options.cwd ?? process.cwd(),
    // stdin stays a pipe: a `--require`d parent watch may end the hub when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    detached: options.detached ?? false,
  });
  // Nothing is written to it; a hub that is gone must not crash its parent with EPIPE.
  child.stdin.on('error', () => undefined);
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
  return { child, output: () => output, exited, exit: () => exitedWith, stop };
}

/** Polls for the hub's `connection.json`; fails when the hub exits first or takes too long. */
async function waitForConnection(
  hub: SpawnedHub,
  file: string,
  stale: FileVersion | undefined,
  timeoutMs: number,
): Promise<ConnectionInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exit = hub.exit();
    if (exit) {
      throw new Error(
        `local-iothub exited (code ${exit.code}, signal ${exit.signal}) before it was ready:\n${hub.output().trimEnd()}`,
      );
    }
    const connection = await tryReadConnection(file, stale);
    if (connection) return connection;
    if (Date.now() > deadline) {
      await hub.stop('SIGKILL');
      throw new Error(`local-iothub did not write ${file} in time:\n${hub.output().trimEnd()}`);
    }
    await sleep(50);
  }
}

/** Starts `local-iothub` and resolves once its `connection.json` is written. */
export async function launchHub(options: LaunchHubOptions): Promise<HubProcess> {
  if (!existsSync(hubCliPath)) throw new Error(`${hubCliPath} is missing: build the package first`);
  mkdirSync(options.dataDir, { recursive: true });
  const connectionFile = path.join(options.dataDir, 'connection.json');
  const stale = makeWayForConnectionFile(options.dataDir, connectionFile);
  const hub = spawnHub(options);
  try {
    options.onSpawn?.(hub.child);
  } catch (error) {
    await hub.stop('SIGKILL');
    throw error;
  }
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const connection = await waitForConnection(hub, connectionFile, stale, timeoutMs);
  const clock = connection.control ? remoteHubClock(connection.control.url) : undefined;
  const { exited, stop, output } = hub;
  const base = { connection, dataDir: options.dataDir, pid: hub.child.pid, stop, exited, output };
  return { ...base, ...(clock ? { clock } : {}) };
}
