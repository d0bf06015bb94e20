/**
 * devhost's console output: one line per invocation, the handler's log lines and host messages.
 * Nothing here prints settings or request contents, so no secret reaches the console through
 * devhost itself; what a handler logs is the handler's business.
 */
import type { RpcLogLevel } from './rpc-types';

export interface HostLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A log line of an invocation (handler or library). */
  invocation(functionName: string, invocationId: string, level: RpcLogLevel, message: string): void;
}

const levelRank: Record<RpcLogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

export function parseLogLevel(text: string | undefined): RpcLogLevel {
  const value = (text ?? '').toLowerCase();
  if (value === 'info') return 'information';
  if (value === 'warn') return 'warning';
  return value in levelRank ? (value as RpcLogLevel) : 'information';
}

/** Lines waiting for the next stdout write (see `writeStdoutLine`). */
let pendingLines: string[] = [];
let exitFlushInstalled = false;

/** Writes the log lines still pending; call before writing to stdout by other means. */
export function flushStdout(): void {
  if (pendingLines.length === 0) return;
  const text = pendingLines.join('');
  pendingLines = [];
  process.stdout.write(text);
}

/**
 * A line to stdout, written with the others of the same turn of the event loop in one write: every
 * invocation logs a line, and under load one synchronous pipe write per line (the stack reads the
 * app's stdout through a pipe) was about 5 % of the app's CPU, on the request's path
 * (docs/benchmarks.md, "Local Functions host"). Lines still pending are written on exit.
 */
function writeStdoutLine(line: string): void {
  if (pendingLines.length === 0) {
    if (!exitFlushInstalled) {
      exitFlushInstalled = true;
      process.on('exit', flushStdout);
    }
    setImmediate(flushStdout);
  }
  pendingLines.push(`${line}\n`);
}

export function createConsoleLog(
  minimum: RpcLogLevel = 'information',
  write: (line: string) => void = writeStdoutLine,
): HostLog {
  const stamp = () => new Date().toISOString();
  const enabled = (level: RpcLogLevel) =>
    level !== 'none' && levelRank[level] >= levelRank[minimum];
  return {
    info: (message) => enabled('information') && write(`[${stamp()}] ${message}`),
    warn: (message) => enabled('warning') && write(`[${stamp()}] warning: ${message}`),
    error: (message) => enabled('error') && write(`[${stamp()}] error: ${message}`),
    invocation(functionName, invocationId, level, message) {
      if (!enabled(level)) return;
      const tag = level === 'information' ? '' : ` ${level}:`;
      write(`[${stamp()}] ${functionName} (${invocationId.slice(0, 8)}):${tag} ${message}`);
    },
  };
}
