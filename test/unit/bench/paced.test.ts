import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpGetter, measurePaced, paced } from '../../../bench/paced';

/** A call that stays pending until `release()`; counts how many were started. */
function heldCalls(): { call: () => Promise<void>; started: () => number; release: () => void } {
  const waiting: Array<() => void> = [];
  let count = 0;
  return {
    call: () =>
      new Promise<void>((resolve) => {
        count += 1;
        waiting.push(resolve);
      }),
    started: () => count,
    release: () => waiting.splice(0).forEach((resolve) => resolve()),
  };
}

describe('paced (open-loop load)', () => {
  const rate = 200;
  const seconds = 0.1;
  const total = rate * seconds;
  const intervalMs = 1000 / rate;

  it('starts every call on schedule while the earlier ones are still pending', async () => {
    const held = heldCalls();
    let startedWhenLastBegan = 0;
    const run = paced(rate, seconds, () => {
      const pending = held.call();
      // A closed loop would never get here past the first call: nothing has answered yet.
      if (held.started() === total) {
        startedWhenLastBegan = held.started();
        held.release();
      }
      return pending;
    });
    const result = await run;
    expect(startedWhenLastBegan).toBe(total);
    expect(result.failed).toBe(0);
    expect(result.perSecond).toBeGreaterThan(0);
  });

  it('measures latency from the scheduled start, so a stall counts against every call it delays', async () => {
    const held = heldCalls();
    const result = await paced(rate, seconds, () => {
      const pending = held.call();
      if (held.started() === total) held.release();
      return pending;
    });
    // The first call was scheduled at the start and answered only after the last one began.
    expect(result.max).toBeGreaterThanOrEqual((total - 1) * intervalMs);
    expect(result.p50).toBeLessThanOrEqual(result.p99);
  });

  it('counts failures and keeps the first error', async () => {
    let n = 0;
    const result = await paced(rate, seconds, () => {
      n += 1;
      return n % 2 === 0 ? Promise.reject(new Error(`call ${n} refused`)) : Promise.resolve();
    });
    expect(result.failed).toBe(total / 2);
    expect(result.firstError).toBe('call 2 refused');
  });
});

describe('measurePaced', () => {
  const seconds = { warmup: 0.05, measured: 0.05 };

  it('returns the measured run when every call succeeds', async () => {
    let calls = 0;
    const result = await measurePaced('ok', 200, seconds, () => Promise.resolve((calls += 1)));
    expect(calls).toBe(20);
    expect(result.failed).toBe(0);
  });

  it('throws with the name and the first error when a measured call fails', async () => {
    let calls = 0;
    const failingLate = () =>
      (calls += 1) > 10 ? Promise.reject(new Error('refused')) : Promise.resolve();
    await expect(measurePaced('the route', 200, seconds, failingLate)).rejects.toThrow(
      'the route: 10 failed (first: refused)',
    );
  });
});

describe('httpGetter', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/ok' ? 200 : 404).end('body');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('resolves on 200 and rejects with the status otherwise', async () => {
    const ok = httpGetter(`${base}/ok`);
    const missing = httpGetter(`${base}/missing`);
    try {
      await expect(ok.get()).resolves.toBeUndefined();
      await expect(missing.get()).rejects.toThrow('HTTP 404');
    } finally {
      ok.close();
      missing.close();
    }
  });
});
