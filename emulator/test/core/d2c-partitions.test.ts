/**
 * The core's device-to-cloud partitions, on both stores (see store-suite.ts): the partition map,
 * appends and reads, retention and order under concurrency; and, on a store that finishes out of
 * order, that events still become visible in sequence order.
 */
import { FakeClock } from '../../core/clock';
import { HubError } from '../../core/contracts';
import { D2CPartitions } from '../../core/d2c-partitions';
import { createMemoryStore } from '../../core/memory-store';
import type { CoreContext } from './store-suite';
import { HOUR, describeOnEachStore, telemetry } from './store-suite';

describeOnEachStore('device-to-cloud partitions', (ctx) => {
  partitionLayoutTests(ctx);
  appendTests(ctx);
});

/** Which partitions there are, which device goes where, and an empty one. */
function partitionLayoutTests(ctx: CoreContext): void {
  test('devices map onto partitions stably and spread over all of them', () => {
    const { core } = ctx;
    expect(core.d2c.partitionIds).toEqual(['0', '1', '2', '3']);
    const used = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const p = core.d2c.partitionOf(`device-${i}`);
      expect(core.d2c.partitionIds).toContain(p);
      expect(core.d2c.partitionOf(`device-${i}`)).toBe(p);
      used.add(p);
    }
    expect(used.size).toBe(4);
  });

  test('the partition count is configurable', async () => {
    await ctx.core.close();
    const core = await ctx.open({ partitionCount: 2 });
    expect(core.d2c.partitionIds).toEqual(['0', '1']);
  });

  test('an untouched partition reports itself empty', () => {
    const { core } = ctx;
    expect(core.d2c.info('2')).toEqual({
      partitionId: '2',
      beginSequenceNumber: -1,
      lastEnqueuedSequenceNumber: -1,
      lastEnqueuedOffset: '-1',
      lastEnqueuedTime: 0,
      isEmpty: true,
    });
    expect(core.d2c.sequenceNumberAtTime('2', 0)).toBe(0);
    expect(() => core.d2c.info('9')).toThrow(HubError);
  });
}

/** Appends and reads, retention, and order under concurrent appends. */
function appendTests(ctx: CoreContext): void {
  test('appends get per-partition sequence numbers, offsets and enqueued times', async () => {
    const { core, clock } = ctx;
    const listener = jest.fn();
    core.d2c.onAppend(listener);
    const p = core.d2c.partitionOf('d1');
    const other = ['d2', 'd3', 'd4', 'd5', 'd6'].find((d) => core.d2c.partitionOf(d) !== p)!;
    const e0 = await core.d2c.append(telemetry('d1', 'a'));
    clock.advance(10);
    const e1 = await core.d2c.append({
      ...telemetry('d1', 'b'),
      messageId: 'm',
      contentType: 'text/plain',
    });
    const o0 = await core.d2c.append(telemetry(other));
    expect(e0).toMatchObject({ partitionId: p, sequenceNumber: 0, offset: '0' });
    expect(e1).toMatchObject({
      partitionId: p,
      sequenceNumber: 1,
      offset: '1',
      messageId: 'm',
    });
    expect(e1.enqueuedTime).toBe(e0.enqueuedTime + 10);
    expect(o0).toMatchObject({ sequenceNumber: 0, offset: '0' });
    expect(listener.mock.calls.map((c: unknown[]) => c[0])).toEqual([e0, e1, o0]);
    const read = core.d2c.read(p, 0, 10);
    expect(read.map((e) => e.body.toString())).toEqual(['a', 'b']);
    expect(read[1]).toMatchObject({ contentType: 'text/plain', properties: { kind: 'test' } });
    expect(core.d2c.read(p, 1, 10)).toHaveLength(1);
    expect(core.d2c.read(p, 0, 1)).toHaveLength(1);
    expect(core.d2c.read(p, 2, 10)).toHaveLength(0);
    expect(core.d2c.info(p)).toEqual({
      partitionId: p,
      beginSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 1,
      lastEnqueuedOffset: '1',
      lastEnqueuedTime: e1.enqueuedTime,
      isEmpty: false,
    });
    expect(core.d2c.sequenceNumberAtTime(p, e0.enqueuedTime)).toBe(0);
    expect(core.d2c.sequenceNumberAtTime(p, e0.enqueuedTime + 1)).toBe(1);
    expect(core.d2c.sequenceNumberAtTime(p, e1.enqueuedTime + 1)).toBe(2);
  });

  test('retention drops old events but sequence numbers go on', async () => {
    const { clock } = ctx;
    await ctx.core.close();
    const core = await ctx.open({ retentionMs: 1000 });
    const p = core.d2c.partitionOf('r');
    await core.d2c.append(telemetry('r', 'old'));
    clock.advance(600);
    await core.d2c.append(telemetry('r', 'newer'));
    clock.advance(500);
    expect(core.d2c.read(p, 0, 10).map((e) => e.body.toString())).toEqual(['newer']);
    expect(core.d2c.info(p)).toMatchObject({ beginSequenceNumber: 1, isEmpty: false });
    clock.advance(1000);
    expect(core.d2c.read(p, 0, 10)).toEqual([]);
    expect(core.d2c.info(p)).toMatchObject({
      beginSequenceNumber: 2,
      lastEnqueuedSequenceNumber: 1,
      isEmpty: true,
    });
    const next = await core.d2c.append(telemetry('r', 'fresh'));
    expect(next.sequenceNumber).toBe(2);
  });

  test('many concurrent appends keep per-partition order', async () => {
    const { core } = ctx;
    const sent = await Promise.all(
      Array.from({ length: 400 }, (_, i) => core.d2c.append(telemetry(`dev-${i % 7}`, String(i)))),
    );
    for (const p of core.d2c.partitionIds) {
      const events = core.d2c.read(p, 0, 1000);
      expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i));
      const expected = sent.filter((e) => e.partitionId === p).map((e) => e.body.toString());
      expect(events.map((e) => e.body.toString())).toEqual(expected);
    }
    expect(core.storeStats().eventsWritten).toBe(400);
  });
}

/**
 * One partition over a store whose appends finish only when the test says so: `finish(i)`
 * completes the i-th append (with `error`, it fails).
 */
function heldStoreD2C(): { d2c: D2CPartitions; finish: (i: number, error?: Error) => void } {
  const finishers: ((error?: Error) => void)[] = [];
  const store = {
    ...createMemoryStore(),
    appendEvent: () =>
      new Promise<void>((resolve, reject) =>
        finishers.push((error) => (error ? reject(error) : resolve())),
      ),
  };
  const d2c = new D2CPartitions(
    { clock: new FakeClock(), store, partitionCount: 1, retentionMs: HOUR },
    new Map(),
  );
  return { d2c, finish: (i, error) => finishers[i]!(error) };
}

describe('D2C visibility order', () => {
  test('events become visible in sequence order even when the store finishes out of order', async () => {
    const { d2c, finish } = heldStoreD2C();
    const seen: number[] = [];
    d2c.onAppend((event) => seen.push(event.sequenceNumber));
    const resolved: number[] = [];
    const appends = [0, 1, 2].map((i) =>
      d2c.append(telemetry('dev', String(i))).then((e) => resolved.push(e.sequenceNumber)),
    );
    finish(2);
    finish(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([]);
    expect(d2c.read('0', 0, 10)).toEqual([]);
    finish(0);
    await Promise.all(appends);
    expect(seen).toEqual([0, 1, 2]);
    expect(resolved).toEqual([0, 1, 2]);
    expect(d2c.read('0', 0, 10).map((e) => e.body.toString())).toEqual(['0', '1', '2']);
  });

  test('a failed append is refused in its turn and the appends after it still become visible', async () => {
    const { d2c, finish } = heldStoreD2C();
    const outcomes = [0, 1, 2].map((i) =>
      d2c.append(telemetry('dev', String(i))).then(
        (e) => `stored ${e.sequenceNumber}`,
        (error: Error) => `refused: ${error.message}`,
      ),
    );
    finish(2);
    finish(1, new Error('disk full'));
    finish(0);
    expect(await Promise.all(outcomes)).toEqual(['stored 0', 'refused: disk full', 'stored 2']);
    expect(d2c.read('0', 0, 10).map((e) => e.body.toString())).toEqual(['0', '2']);
  });

  test('a long queue of appends finishing in waves stays in order', async () => {
    const { d2c, finish } = heldStoreD2C();
    const seen: number[] = [];
    d2c.onAppend((event) => seen.push(event.sequenceNumber));
    const first = Array.from({ length: 3000 }, (_, i) => d2c.append(telemetry('dev', String(i))));
    // The first 2,000 finish (the queue's head passes its midpoint), then more arrive.
    for (let i = 0; i < 2000; i++) finish(i);
    await Promise.all(first.slice(0, 2000));
    const more = Array.from({ length: 500 }, (_, i) => d2c.append(telemetry('dev', `m${i}`)));
    for (let i = 3499; i >= 2000; i--) finish(i);
    await Promise.all([...first, ...more]);
    expect(seen).toEqual(Array.from({ length: 3500 }, (_, i) => i));
    expect(d2c.read('0', 3498, 10).map((e) => e.body.toString())).toEqual(['m498', 'm499']);
  });
});
