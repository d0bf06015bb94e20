/**
 * An open-loop load generator for the fixed-rate figures of issue 14. Calls start on a fixed
 * schedule, one every 1/rate s, whether or not earlier calls have answered, and each latency is
 * measured from the call's scheduled start: a stall in the server (or in this process) shows in
 * every call it delays, with no coordinated omission.
 *
 * autocannon's `overallRate` is not a fixed rate: each connection sends back to back until it has
 * used its share of the second and then waits for the next one, so each second begins with a
 * burst at saturation (20 connections, 20 requests in flight) and the percentiles are those of
 * the burst.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile } from './results';

export interface PacedResult {
  /** Calls completed successfully per second of the run (the offered rate when all keep up). */
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  failed: number;
  /** The first failure's message, for the benchmark's error. */
  firstError?: string;
  /** p99 of how late this process started a call against its schedule (its own share). */
  startLagP99: number;
}

/** Calls `call` `rate` times a second for `seconds`, open loop; latency percentiles in ms. */
export function paced(
  rate: number,
  seconds: number,
  call: () => Promise<unknown>,
): Promise<PacedResult> {
  const total = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  const lags: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  let settled = 0;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const finish = (): void => {
      const elapsed = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      lags.sort((a, b) => a - b);
      resolve({
        perSecond: latencies.length / Math.max(elapsed, seconds),
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        max: latencies.at(-1) ?? Number.NaN,
        failed,
        firstError,
        startLagP99: percentile(lags, 0.99),
      });
    };
    const startOne = (scheduledAt: number): void => {
      lags.push(performance.now() - scheduledAt);
      call()
        .then(
          () => latencies.push(performance.now() - scheduledAt),
          (error: unknown) => {
            failed += 1;
            firstError ??= error instanceof Error ? error.message : String(error);
          },
        )
        .finally(() => {
          settled += 1;
          if (settled === total) finish();
        });
    };
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1);
      while (started < due) {
        startOne(t0 + started * intervalMs);
        started += 1;
      }
      if (started < total) {
        setTimeout(tick, Math.max(0, t0 + started * intervalMs - performance.now()));
      }
    };
    tick();
  });
}

/**
 * A warm-up at `rate` (the JIT, connections), then the measured run; throws, naming `what` and the
 * first error, if any call of the measured run failed.
 */
export async function measurePaced(
  what: string,
  rate: number,
  seconds: { warmup: number; measured: number },
  call: () => Promise<unknown>,
): Promise<PacedResult> {
  await paced(rate, seconds.warmup, call);
  const result = await paced(rate, seconds.measured, call);
  if (result.failed > 0) {
    throw new Error(`${what}: ${result.failed} failed (first: ${result.firstError ?? '?'})`);
  }
  return result;
}

/** A keep-alive `GET` of `url` that fails unless the answer is 200; the body is read and dropped. */
export function httpGetter(
  url: string,
  headers: Record<string, string> = {},
): { get: () => Promise<void>; close: () => void } {
  // A timeout makes Node honour the server's Keep-Alive hint: without one, a request sent on an idle
  // socket just as the server closes it fails with "socket hang up".
  const agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 60_000 });
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else reject(new Error(`GET ${url}: HTTP ${String(res.statusCode)}`));
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}
