/**
 * The stack notices when whatever launched it is gone, so `kill -9 <npm pid>` does not leave the
 * stack and its services running under PID 1. npm runs the script as `sh -c "npm run build &&
 * node dist/devhost/stack/stack.js"` with the terminal as stdin, so no pipe closes when npm dies and the
 * shell in between lives on: the stack watches its parent and, when that parent is a shell, the
 * shell's parent too (npm), polling whether they are still alive. Off Linux (no `/proc`) only a
 * change of the parent pid is noticed.
 */
import { readFileSync } from 'node:fs';

const shells = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh']);

/** `comm` and parent pid of a process from `/proc/<pid>/stat`, or undefined (gone, or no /proc). */
function procStat(pid: number): { comm: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    return { comm: stat.slice(open + 1, close), ppid };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pids whose death means the stack should stop: the parent, and its parent if it is a shell. */
export function launcherPids(): number[] {
  const parent = process.ppid;
  if (parent <= 1) return [];
  const pids = [parent];
  const stat = procStat(parent);
  if (stat && shells.has(stat.comm) && stat.ppid > 1) pids.push(stat.ppid);
  return pids;
}

/**
 * Calls `onGone` once when the parent pid changes or a launcher pid dies. Returns a function that
 * stops watching. The timer does not keep the process alive.
 */
export function watchLaunchers(onGone: (why: string) => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  const pids = launcherPids();
  const timer = setInterval(() => {
    const dead = pids.find((pid) => !alive(pid));
    if (process.ppid === parent && dead === undefined) return;
    clearInterval(timer);
    onGone(
      dead === undefined
        ? `its parent process ${parent} is gone`
        : `the process that started it (pid ${dead}) is gone`,
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
