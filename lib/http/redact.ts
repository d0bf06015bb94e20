/**
 * Removes credentials from text before it reaches a log line. SDK error messages can quote
 * connection strings or SAS tokens (for example when a URL with `sig=` fails), so every SDK
 * message the app logs goes through here first.
 */
import { isErrorLike } from '../iothub/errors';

const patterns: readonly RegExp[] = [
  /(SharedAccessKey=)[^;\s"']*/gi,
  /(AccountKey=)[^;\s"']*/gi,
  /(SharedAccessSignature\s+)[^\s"',]*/gi,
  /([?&]sig=)[^&\s"']*/gi,
  /(\bsig=)[^&;\s"']*/gi,
  /(Authorization:\s*)[^\r\n"']*/gi,
];

export function redactSecrets(text: string): string {
  return patterns.reduce((current, pattern) => current.replace(pattern, '$1[redacted]'), text);
}

/** A one-line, secret-free description of any thrown value: name and message, never the stack. */
export function describeError(error: unknown): string {
  if (isErrorLike(error)) {
    const code = (error as { code?: unknown }).code;
    const suffix = typeof code === 'string' ? ` (${code})` : '';
    return redactSecrets(`${error.name}: ${error.message}${suffix}`).slice(0, 500);
  }
  return redactSecrets(String(error)).slice(0, 500);
}
