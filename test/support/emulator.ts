/**
 * Starts the local IoT Hub (the built CLI, `dist/emulator/cli.js`) as a child process for one test
 * file or benchmark. aedes is ESM-only and cannot load inside Jest's module system, hence a real
 * process; it also means tests exercise exactly what users run.
 *
 * Every port is ephemeral. The emulator writes `connection.json` once every listener is up; we
 * delete any old one first and wait for the new one. The test CA prepared by `run-jest`
 * (`TEST_TLS_DIR`) is copied into the data folder, so the emulator serves a certificate this test
 * process already trusts through `NODE_EXTRA_CA_CERTS`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deviceConnectionString } from '../../lib/connection-string';
import { processTrusts } from '../../emulator/ca-bundle';

export interface EmulatorPorts {
  /** The TLS gateway: HTTPS, AMQPS and MQTTS told apart by their first bytes. */
  gateway: number;
  /** Standard MQTTS listener, null when not served. */
  mqtt: number | null;
  /** Standard AMQPS listener, null when not served. */
  amqp: number | null;
  /** Event Hub-compatible endpoint (plain AMQP). */
  events: number;
}

/** What `DIR/connection.json` holds. */
export interface EmulatorConnectionFile {
  serviceConnectionString: string;
  eventsConnectionString: string;
  /** The Event Hub-compatible endpoint over TLS on the AMQPS port (for TLS-only clients). */
  eventsTlsConnectionString: string;
  eventsName: string;
  caFile: string;
  ports: EmulatorPorts;
}

export interface EmulatorConnection extends EmulatorConnectionFile {
  /** `localhost:<gateway port>`, the HostName of every connection string. */
  hostName: string;
  /** `HostName=…;DeviceId=…;SharedAccessKey=…` for a device on this hub. */
  deviceConnectionString(deviceId: string, key: string): string;
}

/** CLI arguments putting every listener on a free loopback port. */
export const ephemeralPortArgs: readonly string[] = [
  '--host',
  '127.0.0.1',
  '--port',
  '0',
  '--mqtt-port',
  '0',
  '--amqp-port',
  '0',
  '--events-port',
  '0',
];

export interface StartEmulatorOptions {
  inMemory?: boolean;
  /** Reuse a data folder (e.g. to restart on the same state); default: a new temp folder. */
  dataDir?: string;
  partitions?: number;
  /** Extra CLI arguments, appended last. */
  args?: string[];
  /** How long to wait for `connection.json` (default 30 s). */
  startTimeoutMs?: number;
}

export interface EmulatorInstance {
  connection: EmulatorConnection;
  dataDir: string;
  /** Sends the signal (default SIGTERM) and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote to stdout and stderr so far (the last 64 KiB). */
  output(): string;
}

export function repoRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'tsconfig.json'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no repository root above ${from}`);
    dir = parent;
  }
}

const outputLimit = 64 * 1024;
const tempDirs = new Set<string>();
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kill stray emulators and remove temp folders even when a test file forgets to stop one. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

async function copyTestCa(dataDir: string): Promise<void> {
  const source = process.env.TEST_TLS_DIR;
  if (!source) return;
  const target = path.join(dataDir, 'tls');
  await fs.mkdir(target, { recursive: true });
  for (const name of ['ca.pem', 'ca-key.pem', 'server.pem', 'server-key.pem']) {
    const to = path.join(target, name);
    if (existsSync(to)) continue;
    try {
      await fs.copyFile(path.join(source, name), to);
    } catch (error) {
      // The emulator re-issues a missing server certificate from the CA; only the CA matters.
      if (name.startsWith('ca')) throw error;
    }
  }
}

function parseConnectionFile(text: string): EmulatorConnectionFile {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null)
    throw new Error('connection.json is not an object');
  const file = value as Partial<EmulatorConnectionFile>;
  if (
    typeof file.serviceConnectionString !== 'string' ||
    typeof file.eventsConnectionString !== 'string' ||
    typeof file.eventsName !== 'string' ||
    typeof file.caFile !== 'string' ||
    typeof file.ports?.gateway !== 'number' ||
    typeof file.ports.events !== 'number'
  ) {
    throw new Error('connection.json lacks a required field');
  }
  return file as EmulatorConnectionFile;
}

export function toEmulatorConnection(file: EmulatorConnectionFile): EmulatorConnection {
  const match = /(?:^|;)HostName=([^;]+)/.exec(file.serviceConnectionString);
  if (!match?.[1]) throw new Error('serviceConnectionString has no HostName');
  const hostName = match[1];
  return {
    ...file,
    hostName,
    deviceConnectionString: (deviceId, key) => deviceConnectionString(hostName, deviceId, key),
  };
}

let warnedUntrusted = false;
/** SDKs without a `ca` option fail with opaque TLS errors (or retry for minutes): say why, once. */
function warnIfUntrusted(caFile: string): void {
  if (warnedUntrusted || processTrusts(caFile)) return;
  warnedUntrusted = true;
  process.stderr.write(
    `startEmulator: this process does not trust ${caFile}; run tests through \`npm test -- <files>\` ` +
      'or `node dist/test/support/run-jest.js <files>` so NODE_EXTRA_CA_CERTS holds the test CA\n',
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startEmulator(options: StartEmulatorOptions = {}): Promise<EmulatorInstance> {
  installExitHook();
  const root = repoRoot();
  const cli = path.join(root, 'dist', 'emulator', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);

  let dataDir = options.dataDir;
  if (dataDir === undefined) {
    dataDir = mkdtempSync(path.join(tmpdir(), 'local-iothub-'));
    tempDirs.add(dataDir);
  }
  await fs.mkdir(dataDir, { recursive: true });
  await copyTestCa(dataDir);
  const connectionFile = path.join(dataDir, 'connection.json');
  await fs.rm(connectionFile, { force: true });

  const args = [
    // Ends with this process however it ends (a Jest worker force-exited, Ctrl-C twice): no
    // orphaned hubs. The built preload the local stack gives its children (it watches stdin);
    // under Jest this module runs from its source, so the path is the built one.
    '--require',
    path.join(root, 'dist', 'devhost', 'stack', 'parent-watch.js'),
    cli,
    '--data',
    dataDir,
    ...ephemeralPortArgs,
    ...(options.inMemory ? ['--in-memory'] : []),
    ...(options.partitions !== undefined ? ['--partitions', String(options.partitions)] : []),
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: process.env,
  });
  running.add(child);

  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-outputLimit);
    if (process.env.EMULATOR_LOG) process.stderr.write(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  let exitedWith: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((result) => {
    exitedWith = result;
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    // The CLI gives itself 15 s to shut down; never let a test hang beyond that.
    const backstop = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      await exited;
    } finally {
      clearTimeout(backstop);
    }
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exitedWith) {
      throw new Error(
        `emulator exited (code ${exitedWith.code}, signal ${exitedWith.signal}) before it was ready:\n${output}`,
      );
    }
    let text: string | undefined;
    try {
      text = await fs.readFile(connectionFile, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined && text.trim() !== '') {
      try {
        const connection = toEmulatorConnection(parseConnectionFile(text));
        warnIfUntrusted(connection.caFile);
        return { connection, dataDir, stop, exited, output: () => output };
      } catch {
        // Half-written; the emulator writes it atomically, but a partial read is harmless to retry.
      }
    }
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`emulator did not write ${connectionFile} in time:\n${output}`);
    }
    await sleep(50);
  }
}
