/**
 * The data-folder lock (`emulator/data-lock.ts`): a live holder is named and nothing changes; a
 * dead holder's lock, or one whose pid now belongs to another process, is taken over; release
 * removes only our own lock.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LockHolder } from '../data-lock';
import { acquireDataLock, DataLockedError, readLockHolder } from '../data-lock';
import { until } from '../../test/support/wait';

let folder: string;
const sleepers: { kill: () => boolean }[] = [];

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'data-lock-'));
});

afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
  for (const sleeper of sleepers.splice(0)) sleeper.kill();
});

/** A live process that is not this one, to stand for another owner. */
function otherLiveProcess(): number {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
    stdio: 'ignore',
  });
  sleepers.push(child);
  return child.pid ?? -1;
}

function writeLock(holder: LockHolder): string {
  const text = `${JSON.stringify(holder)}\n`;
  writeFileSync(join(folder, 'lock.json'), text);
  return text;
}

test('a live holder is named and its lock stays as it was', () => {
  const pid = otherLiveProcess();
  const text = writeLock({ pid, owner: 'a local stack', url: 'http://x/api', startedAt: 'then' });
  let error: unknown;
  try {
    acquireDataLock(folder, 'lock.json', { owner: 'a local stack' });
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(DataLockedError);
  expect((error as DataLockedError).holder.pid).toBe(pid);
  expect((error as Error).message).toContain(`(pid ${pid}, http://x/api)`);
  expect(readFileSync(join(folder, 'lock.json'), 'utf8')).toBe(text);
  expect(readdirSync(folder)).toEqual(['lock.json']);
});

test("a dead holder's lock is taken over", async () => {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((done) => child.once('exit', done));
  writeLock({ pid: child.pid ?? -1, owner: 'a local stack', startedAt: 'then' });
  const lock = acquireDataLock(folder, 'lock.json', { owner: 'a local stack' });
  expect(readLockHolder(lock.file)?.pid).toBe(process.pid);
  expect(readdirSync(folder)).toEqual(['lock.json']);
});

test('a lock whose pid now belongs to another process (pid reuse) is taken over', () => {
  const pid = otherLiveProcess();
  writeLock({ pid, owner: 'a local stack', startTicks: 1, startedAt: 'then' });
  const lock = acquireDataLock(folder, 'lock.json', { owner: 'a local stack' });
  expect(readLockHolder(lock.file)?.pid).toBe(process.pid);
});

test('a holder that was killed but not yet reaped (a zombie) is dead', async () => {
  // `sleep 0` exits at once; its parent became `sleep 30`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & exec sleep 30'], { stdio: 'ignore' });
  sleepers.push(parent);
  const zombie = await until('a zombie child', () => {
    const pid = Number(
      readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(' ')[0],
    );
    return pid > 0 && readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ') ? pid : undefined;
  });
  writeLock({ pid: zombie, owner: 'a local IoT Hub', startedAt: 'then' });
  const lock = acquireDataLock(folder, 'lock.json', { owner: 'a local IoT Hub' });
  expect(readLockHolder(lock.file)?.pid).toBe(process.pid);
});

test('update adds the URL; release removes only our own lock', () => {
  const lock = acquireDataLock(folder, 'lock.json', { owner: 'a local IoT Hub' });
  lock.update({ url: 'https://localhost:4443' });
  expect(readLockHolder(lock.file)).toMatchObject({
    pid: process.pid,
    owner: 'a local IoT Hub',
    url: 'https://localhost:4443',
  });
  const second = acquireDataLock(join(folder, 'inner'), 'lock.json', { owner: 'x' });
  writeLock({ pid: otherLiveProcess(), owner: 'someone else', startedAt: 'then' });
  lock.release();
  expect(readLockHolder(lock.file)?.owner).toBe('someone else');
  second.release();
  expect(readdirSync(join(folder, 'inner'))).toEqual([]);
});
