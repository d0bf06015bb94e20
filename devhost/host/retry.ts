/**
 * Retry policies as the host applies them to timer and Event Hub triggers: the library sends
 * `retryOptions` with whole-second durations; the host re-invokes a failed function up to
 * `maxRetryCount` times (-1: until it succeeds or the host stops) and tells the handler through
 * `context.retryContext`. `exponentialBackoff` doubles from `minimumInterval` up to
 * `maximumInterval`.
 */
import type { InvocationInput, InvocationResult } from './invoke';
import type { RpcRetryOptions } from './rpc-types';

export interface RetryPolicy {
  strategy: 'fixedDelay' | 'exponentialBackoff';
  maxRetryCount: number;
  /** Delay before retry number `retry` (1-based). */
  delayMs(retry: number): number;
}

export function toRetryPolicy(
  options: RpcRetryOptions | undefined,
  functionName: string,
): RetryPolicy | undefined {
  if (!options) return undefined;
  const maxRetryCount = options.maxRetryCount ?? 0;
  if (!Number.isInteger(maxRetryCount) || maxRetryCount < -1) {
    throw new Error(
      `function "${functionName}": retry.maxRetryCount must be -1 or a non-negative integer`,
    );
  }
  const seconds = (d: { seconds?: number | null } | null | undefined) =>
    Math.max(0, d?.seconds ?? 0) * 1000;
  if (options.retryStrategy === 'fixedDelay') {
    const delay = seconds(options.delayInterval);
    return { strategy: 'fixedDelay', maxRetryCount, delayMs: () => delay };
  }
  if (options.retryStrategy === 'exponentialBackoff') {
    const min = seconds(options.minimumInterval);
    const max = Math.max(min, seconds(options.maximumInterval));
    return {
      strategy: 'exponentialBackoff',
      maxRetryCount,
      delayMs: (retry) => Math.min(max, min * 2 ** Math.max(0, retry - 1)),
    };
  }
  throw new Error(
    `function "${functionName}": retry.strategy must be fixedDelay or exponentialBackoff`,
  );
}

export interface RetryRunOptions {
  policy: RetryPolicy | undefined;
  /** Builds the invocation input for an attempt (the retry context is added here). */
  input: InvocationInput;
  invoke(input: InvocationInput): Promise<InvocationResult>;
  /** Waits, resolving false if the host stops meanwhile (no further attempt is made). */
  sleep(ms: number): Promise<boolean>;
  onRetry?(retry: number, delayMs: number, error: Error): void;
}

export interface RetryOutcome {
  /** The last attempt's result, or undefined if the host stopped before a retry. */
  last: InvocationResult | undefined;
  attempts: number;
  /** False when a stop interrupted the retries: the work is neither done nor given up. */
  settled: boolean;
}

export async function invokeWithRetries(options: RetryRunOptions): Promise<RetryOutcome> {
  const { policy } = options;
  let attempts = 0;
  let lastError: Error | undefined;
  for (let retry = 0; ; retry += 1) {
    const input: InvocationInput = policy
      ? {
          ...options.input,
          retryContext: {
            retryCount: retry,
            maxRetryCount: policy.maxRetryCount,
            exception: lastError
              ? {
                  message: lastError.message,
                  source: lastError.name,
                  stackTrace: lastError.stack ?? null,
                }
              : null,
          },
        }
      : options.input;
    const result = await options.invoke(input);
    attempts += 1;
    if (result.ok || !policy) return { last: result, attempts, settled: true };
    if (policy.maxRetryCount !== -1 && retry >= policy.maxRetryCount)
      return { last: result, attempts, settled: true };
    lastError = result.error;
    const delay = policy.delayMs(retry + 1);
    options.onRetry?.(retry + 1, delay, result.error);
    if (!(await options.sleep(delay))) return { last: result, attempts, settled: false };
  }
}
