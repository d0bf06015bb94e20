/**
 * Child processes of the local stack: output relayed line by line with a name prefix, a wait for
 * a line that says the child is ready, and a stop that sends a signal and waits for the exit.
 *
 * Every child gets a pipe as stdin that the stack never writes to: Node children started with
 * `watchedNodeArgs()` stop themselves when it closes, i.e. when the stack is gone for any reason.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export type StartChildOptions = SpawnOptions & {
  /** Relay only lines that look like errors or warnings (the rest stays in `recent()`). */
  quiet?: boolean;
  write?: (line: string) => void;
};

/**
 * A script of this folder as Node runs it: next to this file when it runs built, else (tests run
 * the sources through ts-jest) its built copy in `dist/devhost/stack`.
 */
function builtScript(name: string): string {
  const here = join(__dirname, name);
  return existsSync(here) ? here : join(__dirname, '..', '..', 'dist', 'devhost', 'stack', name);
}

/** Node arguments that make a Node child end when the stack ends (see `stack/parent-watch.ts`). */
export function watchedNodeArgs(): string[] {
  return ['--require', builtScript('parent-watch.js')];
}

/** Script arguments that run a non-Node command so that it ends with the stack, too. */
export function watchdogArgs(): string[] {
  return [builtScript('watchdog.js')];
}

/** Lines a quiet child still relays: its own errors must reach the stack's output. */
const problemLine = /\b(error|warn(ing)?|fatal|exception|failed|cannot)\b|EADDRINUSE|EACCES/i;

export interface ManagedChild {
  name: string;
  process: ChildProcess;
  /** The last output lines (for error messages). */
  recent(): string;
  /** Resolves with the first capture of `pattern` in the output; rejects if the child exits first. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: StartChildOptions,
): ManagedChild {
  // Own process group: Ctrl-C reaches only the stack, which stops the app before the services it uses.
  const child = spawn(command, args, {
    ...options,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // The stack never writes to it; a child that is gone must not crash the stack with EPIPE.
  child.stdin?.on('error', () => undefined);
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
    if (!options.quiet || problemLine.test(line)) write(`[${name}] ${line}`);
    for (const listener of listeners) listener(line);
  };
  if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
  const exited = new Promise<number | null>((resolveExit) => {
    child.on('exit', (code) => resolveExit(code));
    child.on('error', () => resolveExit(-1));
  });

  return {
    name,
    process: child,
    recent: () => lines.slice(-30).join('\n'),
    exited,
    waitForLine(pattern, timeoutMs) {
      for (const line of lines) {
        const m = pattern.exec(line);
        if (m) return Promise.resolve(m[1] ?? m[0]);
      }
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(
            new Error(
              `${name} did not report readiness within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`,
            ),
          );
        }, timeoutMs);
        const listener = (line: string) => {
          const m = pattern.exec(line);
          if (!m) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolveLine(m[1] ?? m[0]);
        };
        listeners.add(listener);
        void exited.then((code) => {
          clearTimeout(timer);
          if (listeners.delete(listener)) {
            reject(
              new Error(
                `${name} exited with code ${String(code)}:\n${lines.slice(-30).join('\n')}`,
              ),
            );
          }
        });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
