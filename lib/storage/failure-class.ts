/**
 * Tells a storage failure that is a property of the data apart from one of the infrastructure.
 *
 * - **permanent**: Table storage rejected what was sent (400 or 413: a property or entity too
 *   large, invalid input, an out-of-range value, too many properties, …). Sending the same
 *   entities again fails the same way, so retrying blocks whatever waits behind them.
 * - **transient**: anything else — timeouts, connection errors, throttling (429, 503), 5xx,
 *   authentication, and errors we do not recognise. Retrying may succeed, and must, because the
 *   data is fine.
 *
 * A few 400 codes describe the request's headers or credentials rather than the entity (a bad
 * account key signs every request wrongly); they are transient, since every entity would fail.
 * Callers that act on `permanent` still confirm it on a single entity (see
 * `lib/telemetry/isolated-upsert.ts`), so a misclassified infrastructure 400 cannot turn good data
 * into dead letters: the minimal dead letter then fails too and the batch is retried.
 */
import { RestError } from '@azure/data-tables';

/** Why a transient failure happened: safe for logs and the health report (no data in it). */
export type TransientReason =
  'throttled' | 'timeout' | 'unreachable' | 'server-error' | 'auth' | 'unexpected';

export type StorageFailure =
  /** `code`: the service's error code, e.g. `PropertyValueTooLarge` (`BadRequest` if none). */
  { kind: 'permanent'; code: string } | { kind: 'transient'; reason: TransientReason };

/** 400s about the request's headers, URL or credentials: every entity would fail alike. */
const requestLevelCodes = new Set([
  'AuthenticationFailed',
  'InvalidAuthenticationInfo',
  'InvalidHeaderValue',
  'InvalidQueryParameterValue',
  'InvalidUri',
  'InvalidResourceName',
  'MissingRequiredHeader',
  'MissingRequiredQueryParameter',
  'UnsupportedHeader',
  'UnsupportedHttpVerb',
  'UnsupportedQueryParameter',
  'JsonFormatNotSupported',
  'Md5Mismatch',
]);

const networkTimeoutCodes = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'TimeoutError']);
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
]);

function stringField(value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[name];
  return typeof field === 'string' && field !== '' ? field : undefined;
}

/**
 * The service's error code. A transaction failure carries it as `code`; a single-entity call only
 * in `details.errorCode` (the response header) or the OData error body in the message.
 */
export function storageErrorCode(error: unknown): string | undefined {
  const details =
    typeof error === 'object' && error !== null
      ? (error as { details?: unknown }).details
      : undefined;
  const fromDetails = stringField(details, 'errorCode');
  if (fromDetails) return fromDetails;
  const code = stringField(error, 'code');
  if (code) return code;
  const message = stringField(error, 'message');
  const match = message ? /"code"\s*:\s*"([A-Za-z]+)"/.exec(message) : null;
  return match?.[1];
}

function transientReason(status: number | undefined, code: string | undefined): TransientReason {
  if (status === 429 || status === 503) return 'throttled';
  if (status === 408 || status === 504) return 'timeout';
  if (status !== undefined && status >= 500) return 'server-error';
  if (status === 401 || status === 403) return 'auth';
  if (code !== undefined && networkTimeoutCodes.has(code)) return 'timeout';
  if (code !== undefined && networkCodes.has(code)) return 'unreachable';
  return 'unexpected';
}

export function classifyStorageFailure(error: unknown): StorageFailure {
  const status = error instanceof RestError ? error.statusCode : undefined;
  const code = storageErrorCode(error);
  if (error instanceof RestError && (status === 400 || status === 413)) {
    if (code === undefined || !requestLevelCodes.has(code)) {
      return {
        kind: 'permanent',
        code: code ?? (status === 413 ? 'RequestBodyTooLarge' : 'BadRequest'),
      };
    }
    const auth = code === 'InvalidAuthenticationInfo' || code === 'AuthenticationFailed';
    return { kind: 'transient', reason: auth ? 'auth' : 'unexpected' };
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return { kind: 'transient', reason: 'timeout' };
  }
  return { kind: 'transient', reason: transientReason(status, code) };
}

/** True when retrying the same write can only fail the same way. */
export function isPermanentStorageFailure(error: unknown): boolean {
  return classifyStorageFailure(error).kind === 'permanent';
}
