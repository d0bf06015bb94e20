/**
 * One stack per data folder: a second `npm start` on a folder a running stack uses is refused at
 * once (exit 1, naming the running stack) and changes nothing in the folder, so devices created in
 * the running stack afterwards survive its restart. The local IoT Hub refuses a folder another hub
 * holds the same way.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ephemeralPortArgs, hubCliPath } from '@iot-hub-functions/local-iothub';
import type { NodeChild } from '../support/processes';
import { startNode } from '../support/processes';
import type { StackProcess } from './support';
import {
  Api,
  createStackDataDir,
  repoRoot,
  stackEnv,
  stackScript,
  startStackProcess,
  tearDownStack,
} from './support';

jest.setTimeout(240_000);

// The simulator off: only this test changes the hub's state.
const settings = { SIMULATOR_ENABLED: 'false' };

let dataDir: string;
let stack: StackProcess | undefined;

/** Every file under `dir` (relative path → SHA-256 of its content). */
function snapshotFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(dir, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** The exit code of a start that must end by itself; a start that keeps running is killed. */
async function exitWithin(run: NodeChild, timeoutMs: number): Promise<number | null> {
  const timer = setTimeout(() => run.process.kill('SIGTERM'), timeoutMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The files whose content only a start can change. Azurite's database and the timer status are
 * rewritten by the running stack itself at any moment (checkpoints, leases, schedules).
 */
function writtenOnlyAtStart(files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).filter(
      ([file]) => !file.startsWith('azurite/') && !file.startsWith('devhost/timers/'),
    ),
  );
}

beforeAll(async () => {
  dataDir = createStackDataDir('e2e-lock-');
  stack = await startStackProcess(dataDir, settings);
});

afterAll(async () => {
  await tearDownStack({ stack, dataDir });
});

test('a second start on the same data folder is refused, changes nothing, and no device is lost', async () => {
  const first = stack!;
  const api = new Api(first.apiUrl, first.functionKey);
  expect((await api.post('/devices', { deviceId: 'lock-before' })).status).toBe(201);
  const before = snapshotFiles(dataDir);

  const second = startNode(stackScript(), [], { env: stackEnv(dataDir, settings), cwd: repoRoot });
  expect(await exitWithin(second, 30_000)).toBe(1);
  expect(second.output()).toContain(
    `a local stack is already running (pid ${first.pid}, API ${first.apiUrl});`,
  );
  expect(second.output()).toContain('LOCAL_DATA_DIR=');
  const after = snapshotFiles(dataDir);
  expect(Object.keys(before).filter((file) => !(file in after))).toEqual([]);
  expect(writtenOnlyAtStart(after)).toEqual(writtenOnlyAtStart(before));

  expect((await api.post('/devices', { deviceId: 'lock-after' })).status).toBe(201);
  expect(await first.stop()).toBe(0);
  stack = await startStackProcess(dataDir, settings);
  const again = new Api(stack.apiUrl, stack.functionKey);
  expect((await again.get('/devices/lock-before')).status).toBe(200);
  expect((await again.get('/devices/lock-after')).status).toBe(200);
});

test('the local IoT Hub refuses a data folder another hub holds', async () => {
  const hubDir = join(dataDir, 'iothub');
  const before = snapshotFiles(hubDir);
  const hub = startNode(hubCliPath, ['--data', hubDir, ...ephemeralPortArgs]);
  expect(await exitWithin(hub, 30_000)).toBe(1);
  expect(hub.output()).toMatch(
    /a local IoT Hub is already using .*iothub \(pid \d+, https:\/\/localhost:\d+\); stop it/,
  );
  expect(snapshotFiles(hubDir)).toEqual(before);
});
