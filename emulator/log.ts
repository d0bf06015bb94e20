/**
 * Line-oriented logging for the emulator process: one timestamped line per event on stderr
 * (stdout carries only the connection details). Callers never pass keys or tokens; as a second
 * line of defence anything shaped like a SAS signature or a key field is masked.
 */
import type { Logger } from './context';

const secretPatterns: readonly RegExp[] = [
  /(sig=)[^&\s;"]+/gi,
  /(SharedAccessKey=)[^;\s"]+/gi,
  /(SharedAccessSignature )[^\s"]+/gi,
];

export function redactSecrets(text: string): string {
  return secretPatterns.reduce((out, pattern) => out.replace(pattern, '$1***'), text);
}

export function createConsoleLogger(
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const emit = (level: string, message: string) =>
    write(`${new Date().toISOString()} ${level} ${redactSecrets(message)}\n`);
  return {
    info: (message) => emit('INFO ', message),
    warn: (message) => emit('WARN ', message),
    error: (message) => emit('ERROR', message),
  };
}

/** A logger that prefixes every line, e.g. with the protocol surface's name. */
export function prefixed(log: Logger, prefix: string): Logger {
  return {
    info: (message) => log.info(`${prefix} ${message}`),
    warn: (message) => log.warn(`${prefix} ${message}`),
    error: (message) => log.error(`${prefix} ${message}`),
  };
}
