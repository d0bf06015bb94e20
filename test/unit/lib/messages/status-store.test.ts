/**
 * The message status store on the real in-memory `EntityStore` (no table fakes): the races
 * between the send path and feedback, message-id reuse, key escaping and storage failures.
 */
import { MessageStatusStore } from '../../../../lib/messages/status-store';
import type { ConditionalWrite, Entity } from '../../../../lib/storage/entity-store';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import type { TableName } from '../../../../lib/storage/tables';
import { ManualClock } from '../../../support/clock';
import { putStatusRow, statusRow } from '../../../support/status-rows';

function setup(tables = new MemoryEntityStore()) {
  const clock = new ManualClock();
  return { tables, clock, store: new MessageStatusStore(tables, clock) };
}

describe('message status store', () => {
  it('records an enqueued message under escaped keys and reads it back by its real ids', async () => {
    const { tables, store, clock } = setup();
    const at = new Date(clock.now()).toISOString();
    const recorded = await store.recordEnqueued('d#1', 'm/1?', 'full');
    expect(recorded).toEqual({
      deviceId: 'd#1',
      messageId: 'm/1?',
      status: 'enqueued',
      ack: 'full',
      enqueuedAt: at,
      updatedAt: at,
    });
    expect(statusRow(tables, 'd%231|m%2F1%3F')).toMatchObject({ deviceId: 'd#1' });
    expect(await store.read('d#1', 'm/1?')).toEqual(recorded);
    expect(await store.read('d#1', 'other')).toBeUndefined();
  });

  it('keeps the outcome when feedback was stored before the send recorded the message', async () => {
    const { tables, store, clock } = setup();
    await store.recordOutcome({ deviceId: 'd1', messageId: 'm1', status: 'delivered' });
    const feedbackAt = new Date(clock.now()).toISOString();
    clock.time += 1000;
    await store.recordEnqueued('d1', 'm1', 'positive');
    expect(await store.read('d1', 'm1')).toMatchObject({
      status: 'delivered',
      ack: 'positive',
      updatedAt: feedbackAt,
    });
    expect(statusRow(tables, 'd1|m1')?.enqueuedAt).toEqual(expect.any(String));
  });

  it('replaces the row of an earlier send that reused the message id', async () => {
    const { store, clock } = setup();
    await store.recordEnqueued('d1', 'm1', 'full');
    await store.recordOutcome({ deviceId: 'd1', messageId: 'm1', status: 'rejected' });
    clock.time += 60_000;
    const again = await store.recordEnqueued('d1', 'm1', 'none');
    expect(again).toMatchObject({ status: 'enqueued', ack: 'none' });
    expect(await store.read('d1', 'm1')).toEqual(again);
  });

  it('merges an outcome into the row: the send’s ack and time stay', async () => {
    const { tables, store } = setup();
    await putStatusRow(tables, 'd1|m1', {
      deviceId: 'd1',
      messageId: 'm1',
      status: 'enqueued',
      ack: 'full',
      enqueuedAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
    await store.recordOutcome({
      deviceId: 'd1',
      messageId: 'm1',
      status: 'expired',
      description: 'Message expired',
    });
    expect(await store.read('d1', 'm1')).toMatchObject({
      status: 'expired',
      ack: 'full',
      enqueuedAt: '2026-01-01T00:00:00.000Z',
      description: 'Message expired',
    });
  });

  it('re-reads and decides again when another writer changes the row in between', async () => {
    // A store whose first conditional write loses to feedback arriving at that moment.
    class RacingStore extends MemoryEntityStore {
      raced = false;
      override async writeIf(
        table: TableName,
        entity: Entity,
        etag: string | undefined,
      ): Promise<ConditionalWrite> {
        if (!this.raced) {
          this.raced = true;
          await putStatusRow(this, `${entity.partitionKey}|${entity.rowKey}`, {
            deviceId: 'd1',
            messageId: 'm1',
            status: 'delivered',
            updatedAt: '2026-01-01T00:00:01.000Z',
          });
        }
        return super.writeIf(table, entity, etag);
      }
    }
    const { store } = setup(new RacingStore());
    await store.recordEnqueued('d1', 'm1', 'full');
    expect(await store.read('d1', 'm1')).toMatchObject({ status: 'delivered', ack: 'full' });
  });

  it('turns a storage failure into a 503 problem that names no secret', async () => {
    const { tables, store } = setup();
    tables.failure = () => new Error('refused AccountKey=c2VjcmV0');
    const failure = await store.read('d1', 'm1').catch((error: unknown) => error);
    expect(failure).toMatchObject({ kind: 'storageUnavailable', status: 503 });
    expect(String((failure as Error).message)).not.toContain('c2VjcmV0');
  });
});
