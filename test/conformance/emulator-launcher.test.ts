/**
 * The package's one child-process launcher (`launchHub`) as a supervisor such as `npm start` uses
 * it: the process is handed over the moment it is spawned (`onSpawn`), in a process group of its
 * own with `detached`; a hub launched on a folder another hub holds is refused by that hub's lock
 * and leaves its `connection.json` alone; a file left by an earlier run is not taken for the new
 * hub's.
 *
 * Needs `npm run build` (the launcher runs the built CLI).
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HubProcess, LaunchHubOptions } from '@iot-hub-functions/local-iothub';
import { launchHub } from '@iot-hub-functions/local-iothub';
import { startEmulator } from '../support/emulator';

const scratch: string[] = [];
const launched: HubProcess[] = [];

/** A scratch data folder holding the run's test CA, so the hub skips generating keys. */
function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'emulator-launcher-test-'));
  scratch.push(dir);
  const source = process.env.TEST_TLS_DIR;
  if (source) cpSync(source, path.join(dir, 'tls'), { recursive: true });
  return dir;
}

/** `launchHub` with the hub ending with this process (the preload test support gives it too). */
async function launch(options: LaunchHubOptions): Promise<HubProcess> {
  const hub = await launchHub({ inMemory: true, endWithParent: true, ...options });
  launched.push(hub);
  return hub;
}

afterAll(async () => {
  await Promise.all(launched.map((hub) => hub.stop()));
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** The process group of `pid` (field 5 of `/proc/<pid>/stat`). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Whether something accepts a TCP connection on the loopback `port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

test('onSpawn receives the process within the call, before it is ready; detached gives it a group of its own', async () => {
  const dataDir = scratchDir();
  let spawned: ChildProcessWithoutNullStreams | undefined;
  let readyAtSpawn: boolean | undefined;
  const starting = launch({
    dataDir,
    detached: true,
    onSpawn: (child) => {
      spawned = child;
      readyAtSpawn = existsSync(path.join(dataDir, 'connection.json'));
    },
  });
  // Handed over before anything is awaited: a supervisor registers it before it does anything else.
  expect(spawned).toBeDefined();
  const hub = await starting;
  expect(spawned?.pid).toBe(hub.pid);
  expect(readyAtSpawn).toBe(false);
  expect(processGroup(hub.pid ?? -1)).toBe(hub.pid);

  const attached = await launch({ dataDir: scratchDir() });
  expect(processGroup(attached.pid ?? -1)).toBe(processGroup(process.pid));
});

test('a hub launched on a folder a running hub holds is refused and leaves its connection.json', async () => {
  const running = await startEmulator({ inMemory: true });
  try {
    const file = path.join(running.dataDir, 'connection.json');
    const before = readFileSync(file, 'utf8');
    await expect(launch({ dataDir: running.dataDir })).rejects.toThrow(
      /local-iothub exited \(code 1[^]*a local IoT Hub is already using/,
    );
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(await answers(running.connection.ports.gateway)).toBe(true);
  } finally {
    await running.stop();
  }
});

test("a connection.json left by a hub that is gone is not taken for the new hub's", async () => {
  const dataDir = scratchDir();
  const first = await launch({ dataDir });
  const left = readFileSync(path.join(dataDir, 'connection.json'), 'utf8');
  // A crash leaves both files: the lock names a pid that is gone, so the next hub takes it over.
  await first.stop('SIGKILL');
  writeFileSync(path.join(dataDir, 'connection.json'), left);
  const second = await launch({ dataDir });
  expect(second.connection.ports.gateway).not.toBe(first.connection.ports.gateway);
  expect(await answers(second.connection.ports.gateway)).toBe(true);
});
