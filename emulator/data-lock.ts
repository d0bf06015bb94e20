/**
 * An exclusive lock on a data folder, so that two processes never read and write the same state
 * (a second `npm start` once deleted a running hub's `connection.json` and rewrote its state log).
 *
 * The lock is a small JSON file (`<folder>/<name>`) holding the owner's pid, what it is and where
 * it serves. It is created atomically (written to a private temporary file, then hard-linked into
 * place, which fails if the lock exists), so a reader never sees half a lock. A lock whose pid is
 * no longer alive (a crashed or SIGKILLed owner) is taken over; on Linux the owner's process start
 * time is recorded too, so a pid reused by an unrelated process does not keep the lock for ever.
 *
 * No dependencies beyond Node: the emulator (a future standalone package) and devhost share it.
 */
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** What a lock file holds. */
export interface LockHolder {
  pid: number;
  /** What holds it, for the message a second owner prints, e.g. `a local stack`. */
  owner: string;
  /** Where the holder serves, if anywhere (named in the refusal message). */
  url?: string;
  /** Linux only: the holder's start time in clock ticks since boot (`/proc/<pid>/stat`). */
  startTicks?: number;
  startedAt: string;
}

export interface DataLock {
  readonly file: string;
  readonly holder: LockHolder;
  /** Rewrites the lock with more details (e.g. the URL once known); still held throughout. */
  update(details: Pick<LockHolder, 'url'>): void;
  /** Removes the lock if it is still ours; idempotent. */
  release(): void;
}

/** Another live process holds the folder. */
export class DataLockedError extends Error {
  constructor(
    readonly folder: string,
    readonly holder: LockHolder,
  ) {
    super(
      `${holder.owner} is already using ${folder} (pid ${holder.pid}` +
        `${holder.url ? `, ${holder.url}` : ''})`,
    );
    this.name = 'DataLockedError';
  }
}

/**
 * A process's state letter and start time in clock ticks since boot, from `/proc` (undefined off
 * Linux or when it is gone).
 */
function procStat(pid: number): { state: string; startTicks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    return Number.isFinite(startTicks) ? { state: fields[0] ?? '', startTicks } : undefined;
  } catch {
    return undefined;
  }
}

function startTicksOf(pid: number): number | undefined {
  return procStat(pid)?.startTicks;
}

/**
 * Whether the holder still runs: its pid is alive (not a zombie) and, where `/proc` tells, it is
 * the same process that wrote the lock (not a later one that got the same pid).
 */
export function holderAlive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: alive, but owned by another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(holder.pid);
  if (stat === undefined) return true;
  // A zombie (killed, not yet reaped by its parent) holds nothing any more.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return holder.startTicks === undefined || stat.startTicks === holder.startTicks;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.owner !== 'string') return undefined;
    return parsed as LockHolder;
  } catch {
    return undefined;
  }
}

/** The current holder of a lock file, or undefined when there is none (or it is unreadable). */
export function readLockHolder(file: string): LockHolder | undefined {
  try {
    return parseHolder(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Writes `holder` to a private temporary file and hard-links it to `file` (EEXIST if taken). */
function linkInPlace(file: string, holder: LockHolder, replace: boolean): void {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(holder)}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    if (replace) renameSync(temp, file);
    else linkSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
}

/**
 * Moves a stale lock aside and checks that what was moved is the stale lock that was judged dead
 * (another process may have taken it over meanwhile); if not, it is put back.
 */
function removeStale(file: string, stale: string): boolean {
  const aside = `${file}.stale.${process.pid}`;
  try {
    renameSync(file, aside);
  } catch {
    return false;
  }
  if (readFileSync(aside, 'utf8') === stale) {
    rmSync(aside, { force: true });
    return true;
  }
  try {
    linkSync(aside, file);
  } catch {
    // Someone else took it meanwhile: theirs stays.
  }
  rmSync(aside, { force: true });
  return false;
}

/**
 * Takes the lock `name` in `folder` (created if missing), or throws `DataLockedError` naming the
 * live holder without changing anything in the folder.
 */
export function acquireDataLock(
  folder: string,
  name: string,
  details: Pick<LockHolder, 'owner' | 'url'>,
): DataLock {
  mkdirSync(folder, { recursive: true });
  const file = join(folder, name);
  let holder: LockHolder = {
    pid: process.pid,
    owner: details.owner,
    ...(details.url ? { url: details.url } : {}),
    ...(startTicksOf(process.pid) !== undefined ? { startTicks: startTicksOf(process.pid) } : {}),
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      linkInPlace(file, holder, false);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw error;
    }
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // Released meanwhile: try again.
    }
    const current = parseHolder(text);
    if (current && holderAlive(current)) throw new DataLockedError(folder, current);
    removeStale(file, text);
  }
  let released = false;
  return {
    file,
    get holder() {
      return holder;
    },
    update(more) {
      if (released) return;
      holder = { ...holder, ...more };
      linkInPlace(file, holder, true);
    },
    release() {
      if (released) return;
      released = true;
      if (readLockHolder(file)?.pid === process.pid) rmSync(file, { force: true });
    },
  };
}
