/** The MQTT adapter's count of work that shutdown waits for. */
import { PendingWork } from '../../mqtt/guard';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('PendingWork', () => {
  test('settled resolves at once when nothing is pending', async () => {
    await expect(new PendingWork().settled()).resolves.toBeUndefined();
  });

  test('settled waits for every tracked piece of work, failed ones included', async () => {
    const work = new PendingWork();
    const a = deferred();
    const b = deferred();
    work.track(a.promise);
    work.track(b.promise);
    let settled = false;
    const waiting = work.settled().then(() => (settled = true));
    a.resolve();
    await a.promise;
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    b.reject(new Error('write failed'));
    await waiting;
    expect(settled).toBe(true);
  });

  test('work tracked after everything settled is waited for again', async () => {
    const work = new PendingWork();
    const first = deferred();
    work.track(first.promise);
    first.resolve();
    await work.settled();
    const second = deferred();
    work.track(second.promise);
    let settled = false;
    const waiting = work.settled().then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    second.resolve();
    await waiting;
    expect(settled).toBe(true);
  });
});
