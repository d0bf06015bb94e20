/** Telling storage failures apart, and describing any failure without leaking secrets. */
import { RestError } from '@azure/data-tables';
import { describeError as describeRedacted } from '../http/redact';

/** A one-line, redacted description (name, message, code), never the stack. */
export function describeError(error: unknown): string {
  const status = error instanceof RestError && error.statusCode ? ` [${error.statusCode}]` : '';
  return `${describeRedacted(error)}${status}`;
}

/** True when the error came from the storage client (unreachable, throttled, 5xx, auth). */
export function isStorageError(error: unknown): boolean {
  return error instanceof RestError;
}
