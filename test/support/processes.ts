/**
 * Child Node processes for tests that run a built CLI (devhost, the local stack) and read what it
 * prints and writes.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface NodeChild {
  process: ChildProcessWithoutNullStreams;
  /** Everything written to stdout and stderr so far, interleaved as it arrived. */
  output(): string;
  /** The exit code; `null` when a signal ended the process. */
  exited: Promise<number | null>;
}

/** Runs `script` with this Node binary, capturing its output from the start. */
export function startNode(
  script: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): NodeChild {
  const child = spawn(process.execPath, [script, ...args], {
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { process: child, output: () => text, exited };
}

/** The records of a JSON-lines file; none while the file does not exist yet. */
export function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
