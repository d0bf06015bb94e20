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

export function createConsoleLog(
  minimum: RpcLogLevel = 'information',
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
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
