/**
 * Child processes of the local stack: output relayed line by line with a name prefix, a wait for
 * a line that says the child is ready, and a stop that sends a signal and waits for the exit.
 * `startChild` spawns and supervises; `superviseChild` takes a child another launcher spawned (the
 * local IoT Hub's package launches its hub itself and hands the process over at spawn).
 *
 * Every child gets a pipe as stdin that the stack never writes to: Node children started with
 * `watchedNodeArgs()` stop themselves when it closes, i.e. when the stack is gone for any reason.
 */
import { endWithParentArgs } from '@iot-hub-functions/local-iothub';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * A script of this folder as Node runs it: next to this file when it runs built, else (tests run
 * the sources through ts-jest) its built copy in `dist/devhost/stack`.
 */
function builtScript(name: string): string {
  const here = join(__dirname, name);
  return existsSync(here) ? here : join(__dirname, '..', '..', 'dist', 'devhost', 'stack', name);
}

/**
 * Node arguments that make a Node child end when the stack ends: the local IoT Hub package's
 * preload (`endWithParentArgs`), which works for any Node program, Azurite included.
 */
export function watchedNodeArgs(): string[] {
  return endWithParentArgs();
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

export interface SuperviseOptions {
  /** Relay only lines that look like errors or warnings (the rest stays in `recent()`). */
  quiet?: boolean;
  write?: (line: string) => void;
}

export type StartChildOptions = SpawnOptions & SuperviseOptions;

/** A child's output lines: relayed with its name, the last 200 kept, offered to line waiters. */
class LineLog {
  private readonly lines: string[] = [];
  readonly listeners = new Set<(line: string) => void>();

  constructor(
    private readonly name: string,
    private readonly options: SuperviseOptions,
  ) {}

  readonly add = (line: string): void => {
    this.lines.push(line);
    if (this.lines.length > 200) this.lines.shift();
    if (!this.options.quiet || problemLine.test(line)) this.write(`[${this.name}] ${line}`);
    for (const listener of this.listeners) listener(line);
  };

  recent(): string {
    return this.lines.slice(-30).join('\n');
  }

  /** The first capture of `pattern` in the lines so far. */
  find(pattern: RegExp): string | undefined {
    for (const line of this.lines) {
      const m = pattern.exec(line);
      if (m) return m[1] ?? m[0];
    }
    return undefined;
  }

  private write(line: string): void {
    if (this.options.write) this.options.write(line);
    else process.stdout.write(`${line}\n`);
  }
}

/** Waits for a line matching `pattern`; rejects on timeout or when the child exits first. */
function waitForLine(
  name: string,
  log: LineLog,
  exited: Promise<number | null>,
  pattern: RegExp,
  timeoutMs: number,
): Promise<string> {
  const seen = log.find(pattern);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => {
      log.listeners.delete(listener);
      reject(
        new Error(`${name} did not report readiness within ${timeoutMs} ms:\n${log.recent()}`),
      );
    }, timeoutMs);
    const listener = (line: string) => {
      const m = pattern.exec(line);
      if (!m) return;
      clearTimeout(timer);
      log.listeners.delete(listener);
      resolveLine(m[1] ?? m[0]);
    };
    log.listeners.add(listener);
    void exited.then((code) => {
      clearTimeout(timer);
      if (log.listeners.delete(listener)) {
        reject(new Error(`${name} exited with code ${String(code)}:\n${log.recent()}`));
      }
    });
  });
}

/**
 * Supervises a child the stack has spawned (itself, or through a launcher such as the local IoT
 * Hub's `launchHub`): relays its output lines, keeps the last ones, reports its exit and stops it.
 * Its stdio must be pipes.
 */
export function superviseChild(
  name: string,
  child: ChildProcess,
  options: SuperviseOptions,
): ManagedChild {
  // The stack never writes to it; a child that is gone must not crash the stack with EPIPE.
  child.stdin?.on('error', () => undefined);
  const log = new LineLog(name, options);
  if (child.stdout) createInterface({ input: child.stdout }).on('line', log.add);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', log.add);
  const exited = new Promise<number | null>((resolveExit) => {
    child.on('exit', (code) => resolveExit(code));
    child.on('error', () => resolveExit(-1));
  });
  return {
    name,
    process: child,
    recent: () => log.recent(),
    exited,
    waitForLine: (pattern, timeoutMs) => waitForLine(name, log, exited, pattern, timeoutMs),
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: StartChildOptions,
): ManagedChild {
  const { quiet, write, ...spawnOptions } = options;
  // Own process group: Ctrl-C reaches only the stack, which stops the app before the services it uses.
  const child = spawn(command, args, {
    ...spawnOptions,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return superviseChild(name, child, {
    ...(quiet !== undefined ? { quiet } : {}),
    ...(write ? { write } : {}),
  });
}
