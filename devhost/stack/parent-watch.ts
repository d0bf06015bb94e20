/**
 * Preloaded into every Node child of the local stack (`node --require …/parent-watch.js …`): the
 * child ends when the stack ends, however the stack ends — including SIGKILL, which the stack
 * cannot react to. The stack gives each child a pipe as stdin and never writes to it; when the
 * stack's process is gone the kernel closes the pipe and the child reads EOF.
 *
 * On EOF the child signals itself SIGTERM, so it stops the way it does on Ctrl-C (the hub flushes
 * its state, Azurite closes its servers, devhost checkpoints); if that takes longer than a few
 * seconds (its storage may be gone too) it exits anyway. Preloading works for Azurite too, whose
 * code we do not control, and a preload cannot be separated from its process (a wrapper process
 * could be killed and leave the real child behind).
 */

/** How long a child may take to stop gracefully once its stack is gone. */
const gracefulStopMs = 5_000;

function onStackGone(): void {
  const force = setTimeout(() => process.exit(1), gracefulStopMs);
  force.unref();
  process.kill(process.pid, 'SIGTERM');
}

function watchStdin(): void {
  const stdin = process.stdin;
  let gone = false;
  const once = () => {
    if (gone) return;
    gone = true;
    onStackGone();
  };
  stdin.on('end', once);
  stdin.on('close', once);
  stdin.on('error', once);
  stdin.resume();
  // Watching must not keep a child alive that would otherwise exit on its own.
  (stdin as { unref?: () => void }).unref?.();
}

// Only under the stack, which always gives a pipe; never read a terminal.
if (!process.stdin.isTTY) watchStdin();
