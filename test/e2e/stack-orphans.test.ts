/**
 * No orphans, whatever stops the stack: SIGKILL of the stack or of the npm process that started
 * it, a failed start and a service that dies leave no process running in the data folder and no
 * port bound. `--help` starts nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { endWithParentArgs, readLockHolder } from '@iot-hub-functions/local-iothub';
import { portAnswers } from '../support/azurite';
import { startNode } from '../support/processes';
import type { StackProcess } from './support';
import {
  createStackDataDir,
  processesUsing,
  removeStackDataDir,
  repoRoot,
  stackEnv,
  stackScript,
  startStackProcess,
  waitFor,
} from './support';

jest.setTimeout(300_000);

const settings = { SIMULATOR_ENABLED: 'false' };
const dataDirs: string[] = [];

afterAll(() => {
  for (const dir of dataDirs) removeStackDataDir(dir);
});

function newDataDir(): string {
  const dir = createStackDataDir('e2e-orphans-');
  dataDirs.push(dir);
  return dir;
}

/** Every port the stack's services listen on: the API, the hub's and Azurite's. */
function stackPorts(stack: StackProcess): number[] {
  const ports = [Number(new URL(stack.apiUrl).port)];
  for (const m of stack.storageConnectionString.matchAll(/Endpoint=http:\/\/[^:]+:(\d+)/g)) {
    ports.push(Number(m[1]));
  }
  const hub = readLockHolder(join(stack.dataDir, 'iothub', 'lock.json'));
  ports.push(Number(new URL(hub?.url ?? '').port));
  return ports;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until no process runs in `dataDir`, `pids` are gone and none of `ports` answers. */
async function expectAllGone(dataDir: string, pids: number[], ports: number[]): Promise<void> {
  await waitFor(
    'every process of the stack to end',
    () => (processesUsing(dataDir).length === 0 && !pids.some(alive) ? true : undefined),
    { timeoutMs: 15_000 },
  );
  await waitFor(
    'every port of the stack to be closed',
    async () => ((await Promise.all(ports.map(portAnswers))).some(Boolean) ? undefined : true),
    { timeoutMs: 5_000 },
  );
}

test('SIGKILL of the stack ends its services, and the next start takes over its lock', async () => {
  const dataDir = newDataDir();
  const stack = await startStackProcess(dataDir, settings);
  const ports = stackPorts(stack);
  expect(processesUsing(dataDir).length).toBeGreaterThanOrEqual(3);
  process.kill(stack.pid, 'SIGKILL');
  await expectAllGone(dataDir, [stack.pid], ports);

  const again = await startStackProcess(dataDir, settings);
  expect(readLockHolder(join(dataDir, 'lock.json'))?.pid).toBe(again.pid);
  expect(await again.stop()).toBe(0);
});

test('SIGKILL of npm, which started the stack, ends the stack and its services', async () => {
  const dataDir = newDataDir();
  const stack = await startStackProcess(dataDir, settings, { launcher: 'npm' });
  const stackPid = readLockHolder(join(dataDir, 'lock.json'))?.pid ?? -1;
  expect(stackPid).not.toBe(stack.pid);
  const ports = stackPorts(stack);
  process.kill(stack.pid, 'SIGKILL');
  await expectAllGone(dataDir, [stackPid], ports);
});

test('a service that dies is reported and the stack stops everything, exit 1', async () => {
  const dataDir = newDataDir();
  const stack = await startStackProcess(dataDir, settings);
  const ports = stackPorts(stack);
  const hubPid = readLockHolder(join(dataDir, 'iothub', 'lock.json'))?.pid ?? -1;
  process.kill(hubPid, 'SIGKILL');
  expect(await stack.exited).toBe(1);
  expect(stack.lines().join('\n')).toMatch(/iothub exited unexpectedly \(code SIGKILL\)/);
  await expectAllGone(dataDir, [stack.pid], ports);
});

test('a failed start (Azurite cannot listen) leaves nothing running', async () => {
  const dataDir = newDataDir();
  // A port held by something that is not Azurite: the stack's own Azurite cannot listen there.
  const busy: Server = createServer();
  await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
  const port = (busy.address() as { port: number }).port;
  try {
    const env = stackEnv(dataDir, { ...settings, LOCAL_AZURITE_PORTS: `${port},${port},${port}` });
    const run = startNode(stackScript(), [], { env, cwd: repoRoot });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/\[azurite\].*EADDRINUSE|address already in use/);
    await expectAllGone(dataDir, [run.process.pid ?? -1], []);
    expect(existsSync(join(dataDir, 'iothub', 'lock.json'))).toBe(false);
  } finally {
    busy.close();
  }
});

test('a non-Node service (func) run through the watchdog ends when the stack is gone', async () => {
  const stackDir = join(repoRoot, 'dist', 'devhost', 'stack');
  const watchdog = spawn(
    process.execPath,
    [...endWithParentArgs(), join(stackDir, 'watchdog.js'), 'sleep', '600'],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
  const watchdogPid = watchdog.pid ?? -1;
  const exited = new Promise((done) => watchdog.once('exit', done));
  const childrenFile = `/proc/${watchdogPid}/task/${watchdogPid}/children`;
  const sleepPid = await waitFor('the watchdog to start its command', () => {
    const pid = Number(readFileSync(childrenFile, 'utf8').trim().split(' ')[0]);
    return pid > 0 ? pid : undefined;
  });
  // What the end of the stack looks like to its children: their stdin pipe closes.
  watchdog.stdin.destroy();
  await exited;
  await waitFor('the command to end', () => (alive(sleepPid) ? undefined : true), {
    timeoutMs: 10_000,
  });
});

test('--help prints the usage and starts nothing', async () => {
  const dataDir = join(newDataDir(), 'not-created');
  const run = startNode(stackScript(), ['--help'], { env: stackEnv(dataDir), cwd: repoRoot });
  expect(await run.exited).toBe(0);
  expect(run.output()).toMatch(/^Usage: npm start -- \[options\]/);
  expect(run.output()).toContain('LOCAL_DATA_DIR');
  expect(existsSync(dataDir)).toBe(false);
});
