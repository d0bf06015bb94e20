/**
 * A preload (`node --require …/end-with-parent.js …`, see `endWithParentArgs` in ./launcher.ts; never imported) that makes a Node
 * process end when the process that started it ends, however that ends — including SIGKILL, which
 * the parent cannot react to. The parent gives the child a pipe as stdin and never writes to it;
 * when the parent is gone the kernel closes the pipe and the child reads EOF. `launchHub` gives it
 * to a hub with `endWithParent`; the local stack (`npm start`) gives it to each of its Node
 * children, and test support to the hubs it starts, so a killed parent leaves no process behind.
 *
 * On EOF the child signals itself SIGTERM, so it stops the way it does on Ctrl-C (the hub flushes
 * its state, Azurite closes its servers, devhost checkpoints); if that takes longer than a few
 * seconds (its storage may be gone too) it exits anyway. Preloading works for Azurite too, whose
 * code we do not control, and a preload cannot be separated from its process (a wrapper process
 * could be killed and leave the real child behind).
 */

/** How long a child may take to stop gracefully once its parent is gone. */
const gracefulStopMs = 5_000;

function onParentGone(): void {
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
    onParentGone();
  };
  stdin.on('end', once);
  stdin.on('close', once);
  stdin.on('error', once);
  stdin.resume();
  // Watching must not keep a child alive that would otherwise exit on its own.
  (stdin as { unref?: () => void }).unref?.();
}

// Only with a pipe as stdin (what a parent gives); never read a terminal.
if (!process.stdin.isTTY) watchStdin();
