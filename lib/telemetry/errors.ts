/** Telling storage failures apart, and describing any failure without leaking secrets. */
import { RestError } from '@azure/data-tables';
import { ApiError } from '../http/problem';
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

/**
 * Run a read of the telemetry tables; a storage failure is logged (redacted) and becomes a 503
 * for the HTTP edge (`withProblems`) to answer. Other failures pass through unchanged.
 */
export async function fromStorage<T>(
  what: string,
  read: () => Promise<T>,
  warn: (text: string) => void,
): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (!isStorageError(error)) throw error;
    warn(`${what} failed: ${describeError(error)}`);
    throw new ApiError('storageUnavailable', 'The telemetry store could not be read; retry later.');
  }
}
