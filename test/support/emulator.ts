/**
 * Starts the local IoT Hub as a child process for one test file, through the package's launcher
 * (`launchHub`): aedes is an ES module and cannot load inside Jest's module system, hence a real
 * process; it also means tests exercise exactly what users run.
 *
 * Every port is ephemeral. The test CA prepared by `run-jest` (`TEST_TLS_DIR`) is copied into the
 * data folder, so the emulator serves a certificate this test process already trusts through
 * `NODE_EXTRA_CA_CERTS`. With `manualClock` the hub's time moves only by `emulator.clock.advance`.
 */
import type {
  BoundPorts,
  ConnectionInfo,
  HubClock,
  HubProcess,
} from '@iot-hub-functions/local-iothub';
import {
  deviceConnectionString,
  ephemeralPortArgs,
  hubHostName,
  launchHub,
  processTrusts,
} from '@iot-hub-functions/local-iothub';
import { existsSync, promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export { ephemeralPortArgs };
export type EmulatorPorts = BoundPorts;
/** What `DIR/connection.json` holds. */
export type EmulatorConnectionFile = ConnectionInfo;

export interface EmulatorConnection extends EmulatorConnectionFile {
  /** `localhost:<gateway port>`, the HostName of every connection string. */
  hostName: string;
  /** `HostName=…;DeviceId=…;SharedAccessKey=…` for a device on this hub. */
  deviceConnectionString(deviceId: string, key: string): string;
}

export interface StartEmulatorOptions {
  inMemory?: boolean;
  /** Reuse a data folder (e.g. to restart on the same state); default: a new temp folder. */
  dataDir?: string;
  partitions?: number;
  /** `--manual-clock`: time moves only through `emulator.clock.advance(ms)`. */
  manualClock?: boolean;
  /** Extra CLI arguments, appended last. */
  args?: string[];
  /** How long to wait for `connection.json` (default 30 s). */
  startTimeoutMs?: number;
}

export interface EmulatorInstance {
  connection: EmulatorConnection;
  dataDir: string;
  /** Present with `manualClock`. */
  clock?: HubClock;
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

const tempDirs = new Set<string>();
const running = new Set<HubProcess>();
let exitHookInstalled = false;

/** Kill stray emulators and remove temp folders even when a test file forgets to stop one. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const hub of running) {
      try {
        if (hub.pid !== undefined) process.kill(hub.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
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

export function toEmulatorConnection(file: EmulatorConnectionFile): EmulatorConnection {
  return {
    ...file,
    hostName: hubHostName(file),
    deviceConnectionString: (deviceId, key) => deviceConnectionString(file, deviceId, key),
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

export async function startEmulator(options: StartEmulatorOptions = {}): Promise<EmulatorInstance> {
  installExitHook();
  const root = repoRoot();
  let dataDir = options.dataDir;
  if (dataDir === undefined) {
    dataDir = mkdtempSync(path.join(tmpdir(), 'local-iothub-'));
    tempDirs.add(dataDir);
  }
  await fs.mkdir(dataDir, { recursive: true });
  await copyTestCa(dataDir);
  const hub = await launchHub({
    dataDir,
    // Ends with this process however it ends (a Jest worker force-exited, Ctrl-C twice): no
    // orphaned hubs.
    endWithParent: true,
    cwd: root,
    ...(options.inMemory ? { inMemory: true } : {}),
    ...(options.partitions !== undefined ? { partitions: options.partitions } : {}),
    ...(options.manualClock ? { manualClock: true } : {}),
    ...(options.args ? { args: options.args } : {}),
    ...(options.startTimeoutMs !== undefined ? { startTimeoutMs: options.startTimeoutMs } : {}),
    ...(process.env.EMULATOR_LOG
      ? { onOutput: (chunk: Buffer) => process.stderr.write(chunk) }
      : {}),
  });
  running.add(hub);
  void hub.exited.then(() => running.delete(hub));
  const connection = toEmulatorConnection(hub.connection);
  warnIfUntrusted(connection.caFile);
  return { ...hub, connection };
}
