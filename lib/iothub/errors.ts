/**
 * IoT Hub SDK failure helpers with no HTTP in them: our own bounded wait and its error, and the
 * cross-realm error test. Turning these failures into API problems is `lib/http/hub-errors.ts`.
 */

/** Raised by our own bounded waits around SDK calls that can otherwise retry for minutes. */
export class HubTimeoutError extends Error {
  constructor(operation: string, ms: number) {
    super(`${operation} did not complete within ${ms} ms`);
    this.name = 'HubTimeoutError';
  }
}

/**
 * Errors from Node's own modules can come from another realm (Jest's sandbox, for one), where
 * `instanceof Error` is false; anything with a string `name` and `message` is treated as an error.
 */
export function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { name?: unknown; message?: unknown };
  return typeof candidate.name === 'string' && typeof candidate.message === 'string';
}

/** Bound an SDK promise: some SDK operations retry internally for minutes when the hub is down. */
export async function withHubTimeout<T>(
  operation: string,
  ms: number,
  work: Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HubTimeoutError(operation, ms)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
