/**
 * The core's feedback batching, on both stores (see store-suite.ts): batches close at 64 records
 * or the batch delay after their first record, and are taken, released and settled.
 */
import type { InspectableCore } from '../../core/create-core';
import { BATCH_DELAY, c2dInput, describeOnEachStore } from './store-suite';

/** `count` Success records for device 'fb', completing one message each. */
async function produceRecords(core: InspectableCore, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await core.c2d.enqueue('fb', c2dInput({ ack: 'full', messageId: `r${i}` }));
    await core.c2d.complete('fb', core.c2d.lockNext('fb')!.lockToken);
  }
}

describeOnEachStore('feedback batching', (ctx) => {
  beforeEach(async () => {
    await ctx.core.registry.create({ deviceId: 'fb' });
  });

  test('a batch closes at 64 records without waiting', async () => {
    const { core, clock } = ctx;
    await produceRecords(core, 130);
    const first = core.feedback.take()!;
    const second = core.feedback.take()!;
    expect(first.records).toHaveLength(64);
    expect(second.records).toHaveLength(64);
    expect(first.records[0]!.originalMessageId).toBe('r0');
    expect(second.records[0]!.originalMessageId).toBe('r64');
    expect(core.feedback.take()).toBeUndefined();
    clock.advance(BATCH_DELAY);
    expect(core.feedback.take()!.records.map((r) => r.originalMessageId)).toEqual(['r128', 'r129']);
  });

  test('a partial batch closes the batch delay after its first record', async () => {
    const { core, clock } = ctx;
    const available = jest.fn();
    core.feedback.onAvailable(available);
    await produceRecords(core, 1);
    clock.advance(BATCH_DELAY / 2);
    await produceRecords(core, 1);
    clock.advance(BATCH_DELAY / 2 - 1);
    expect(core.feedback.take()).toBeUndefined();
    clock.advance(1);
    await Promise.resolve();
    expect(available).toHaveBeenCalledTimes(1);
    const batch = core.feedback.take()!;
    expect(batch.records).toHaveLength(2);
    expect(batch.enqueuedTime).toBe(clock.now());
  });

  test('take hands a batch out once; release returns it; settle removes it', async () => {
    const { core, clock } = ctx;
    await produceRecords(core, 1);
    clock.advance(BATCH_DELAY);
    const batch = core.feedback.take()!;
    expect(core.feedback.take()).toBeUndefined();
    const available = jest.fn();
    core.feedback.onAvailable(available);
    core.feedback.release(batch.batchId);
    expect(available).toHaveBeenCalledTimes(1);
    const again = core.feedback.take()!;
    expect(again).toEqual(batch);
    await core.feedback.settle(again.batchId);
    core.feedback.release(again.batchId);
    expect(core.feedback.take()).toBeUndefined();
  });
});
