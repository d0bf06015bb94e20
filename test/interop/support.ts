/**
 * Running the non-Node clients of the interop suite: Debian's Python (with `python3-azure` and
 * `python3-paho-mqtt`) and the mosquitto command-line clients. The system interpreter is named
 * explicitly: a `python3` earlier on PATH (pyenv, a virtualenv) lacks the Debian packages.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const systemPython = '/usr/bin/python3';
export const pythonScripts = path.join(__dirname, 'python');

export interface Program {
  /** Everything printed so far, stdout then stderr interleaved as it arrived. */
  output(): string;
  /** The JSON objects printed on stdout so far, one per line. */
  records(): Record<string, unknown>[];
  exited: Promise<number | null>;
  kill(): void;
}

/** Runs `command` with `args` (no shell), ending it after `timeoutMs` so a hang fails the test. */
export function run(command: string, args: readonly string[], timeoutMs = 90_000): Program {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
  return {
    output: () => text,
    records: () =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

/** Runs a script of `test/interop/python` with the system Python. */
export function runPython(script: string, args: readonly string[]): Program {
  return run(systemPython, [path.join(pythonScripts, script), ...args]);
}

/** Fails with what to install when a client of the suite is missing (no silent skip). */
export function requireClients(): void {
  const missing = [systemPython, '/usr/bin/mosquitto_pub'].filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: apt-get install -y python3-azure python3-paho-mqtt mosquitto-clients`,
    );
  }
}
