import type { InvocationInput, InvocationResult } from '../../../../devhost/host/invoke';
import { invokeWithRetries, toRetryPolicy } from '../../../../devhost/host/retry';

function results(...oks: boolean[]): (input: InvocationInput) => Promise<InvocationResult> {
  let i = 0;
  return () => {
    const ok = oks[i++] ?? true;
    return Promise.resolve(
      ok
        ? { ok: true, invocationId: `i${i}`, durationMs: 1, response: {} }
        : {
            ok: false,
            invocationId: `i${i}`,
            durationMs: 1,
            error: new Error(`attempt ${i} failed`),
          },
    );
  };
}

describe('retry policies', () => {
  it('doubles exponential backoff from the minimum up to the maximum', () => {
    const policy = toRetryPolicy(
      {
        retryStrategy: 'exponentialBackoff',
        maxRetryCount: 5,
        minimumInterval: { seconds: 2 },
        maximumInterval: { seconds: 10 },
      },
      'f',
    );
    expect([1, 2, 3, 4, 5].map((n) => policy?.delayMs(n))).toEqual([
      2000, 4000, 8000, 10000, 10000,
    ]);
  });

  it('refuses unknown strategies and bad counts by function name', () => {
    expect(() => toRetryPolicy({ retryStrategy: null, maxRetryCount: 1 }, 'f')).toThrow(
      'function "f": retry.strategy',
    );
    expect(() => toRetryPolicy({ retryStrategy: 'fixedDelay', maxRetryCount: -2 }, 'f')).toThrow(
      'maxRetryCount',
    );
    expect(toRetryPolicy(undefined, 'f')).toBeUndefined();
  });

  it('without a policy runs once and sends no retry context', async () => {
    const inputs: InvocationInput[] = [];
    const invoke = results(false);
    const outcome = await invokeWithRetries({
      policy: undefined,
      input: {},
      invoke: (input) => {
        inputs.push(input);
        return invoke(input);
      },
      sleep: () => Promise.resolve(true),
    });
    expect(outcome).toMatchObject({ attempts: 1, settled: true, last: { ok: false } });
    expect(inputs[0]?.retryContext).toBeUndefined();
  });

  it('stops after maxRetryCount retries and reports the last failure', async () => {
    const policy = toRetryPolicy(
      { retryStrategy: 'fixedDelay', maxRetryCount: 2, delayInterval: { seconds: 3 } },
      'f',
    );
    const sleeps: number[] = [];
    const outcome = await invokeWithRetries({
      policy,
      input: {},
      invoke: results(false, false, false, true),
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve(true);
      },
    });
    expect(outcome.attempts).toBe(3);
    expect(outcome.settled).toBe(true);
    expect(outcome.last?.ok).toBe(false);
    expect(sleeps).toEqual([3000, 3000]);
  });

  it('retries forever with -1 until success, and a stop interrupts without settling', async () => {
    const forever = toRetryPolicy(
      { retryStrategy: 'fixedDelay', maxRetryCount: -1, delayInterval: { seconds: 0 } },
      'f',
    );
    const success = await invokeWithRetries({
      policy: forever,
      input: {},
      invoke: results(false, false, false, false, false, true),
      sleep: () => Promise.resolve(true),
    });
    expect(success).toMatchObject({ attempts: 6, settled: true, last: { ok: true } });
    const stopped = await invokeWithRetries({
      policy: forever,
      input: {},
      invoke: results(false, false),
      sleep: () => Promise.resolve(false),
    });
    expect(stopped).toMatchObject({ attempts: 1, settled: false });
  });
});
