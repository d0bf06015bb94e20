/**
 * `node --require …/end-with-parent.js …/watchdog.js <command> [args…]`: runs a child of the stack
 * that is not a Node process (Core Tools' `func`), so it too ends when the stack ends. The
 * preloaded parent watch turns the end of the stack into a SIGTERM of this process, which passes
 * it on to the command's process group; whenever this process exits, whatever is left of that
 * group is killed. Output goes straight to the stack (inherited pipes); the exit code is passed on.
 */
import { spawn } from 'node:child_process';

function main(): void {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    process.stderr.write('usage: watchdog.js <command> [args...]\n');
    process.exit(2);
  }
  // Own process group, so a signal reaches the command and everything it started.
  const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  process.on('SIGTERM', () => signalGroup('SIGTERM'));
  process.on('SIGINT', () => signalGroup('SIGINT'));
  // Also after the command exited: what it started may still run in its group.
  process.on('exit', () => signalGroup('SIGKILL'));
  child.on('error', (error) => {
    process.stderr.write(`cannot run ${command}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

main();
