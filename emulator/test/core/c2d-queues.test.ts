/**
 * The core's cloud-to-device queues, on both stores (see store-suite.ts): enqueue and its limits,
 * locks, the delivery limit and expiry, the feedback each ack mode yields, dead-lettering and purge.
 */
import type { AckMode, C2DMessageInput, FeedbackStatusCode } from '../../core/contracts';
import type { CoreContext } from './store-suite';
import {
  BATCH_DELAY,
  HOUR,
  c2dInput,
  describeOnEachStore,
  drainFeedback,
  expectHubError,
} from './store-suite';

describeOnEachStore('cloud-to-device queues', (ctx) => {
  beforeEach(async () => {
    await ctx.core.registry.create({ deviceId: 'dev' });
  });

  enqueueTests(ctx);
  lockTests(ctx);
  deliveryLimitAndExpiryTests(ctx);
  ackModeTests(ctx);
  deadLetterAndPurgeTests(ctx);
});

/** What enqueue assigns, and the size and queue depth limits. */
function enqueueTests(ctx: CoreContext): void {
  test('enqueue assigns ids, TTL and addressing; unknown devices and big bodies fail', async () => {
    const { core, clock } = ctx;
    const message = await core.c2d.enqueue(
      'dev',
      c2dInput({
        correlationId: 'c1',
        contentType: 'application/json',
        properties: { a: '1' },
      }),
    );
    expect(message.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(message).toMatchObject({
      deviceId: 'dev',
      correlationId: 'c1',
      contentType: 'application/json',
      properties: { a: '1' },
      enqueuedTime: clock.now(),
      expiryTime: clock.now() + HOUR,
      deliveryCount: 0,
      to: '/devices/dev/messages/devicebound',
    });
    const explicit = await core.c2d.enqueue(
      'dev',
      c2dInput({ messageId: 'mine', expiryTime: clock.now() + 5000 }),
    );
    expect(explicit).toMatchObject({ messageId: 'mine', expiryTime: clock.now() + 5000 });
    expect(explicit.lockToken).not.toBe(message.lockToken);
    await expectHubError(core.c2d.enqueue('ghost', c2dInput()), 'DeviceNotFound');
    // 64 KB counts the body, the system property values ('big', the 33-byte `to`) and the
    // property names and values ('k' + 'v').
    const atLimit = (extra: number): C2DMessageInput =>
      c2dInput({
        messageId: 'big',
        properties: { k: 'v' },
        body: Buffer.alloc(64 * 1024 - 3 - 33 - 2 + extra),
      });
    await expect(core.c2d.enqueue('dev', atLimit(0))).resolves.toBeDefined();
    await expectHubError(core.c2d.enqueue('dev', atLimit(1)), 'MessageTooLarge');
    await expectHubError(
      core.c2d.enqueue('dev', c2dInput({ properties: { note: 'not allowed' } })),
      'ArgumentInvalid',
    );
    await expectHubError(
      core.c2d.enqueue('dev', c2dInput({ properties: { 'k/1': 'v' } })),
      'ArgumentInvalid',
    );
    expect(core.c2d.depth('dev')).toBe(3);
  });

  test('a queue holds at most 50 messages, also under concurrent sends', async () => {
    const { core } = ctx;
    expect(core.c2d.maxQueueDepth).toBe(50);
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        core.c2d.enqueue('dev', c2dInput({ messageId: `m${i}` })),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
    for (const r of results.filter((x) => x.status === 'rejected')) {
      expect(r.reason).toMatchObject({
        code: 'DeviceMaximumQueueDepthExceeded',
      });
    }
    expect(core.c2d.depth('dev')).toBe(50);
    // Completing one makes room for one.
    const locked = core.c2d.lockNext('dev')!;
    await core.c2d.complete('dev', locked.lockToken);
    await core.c2d.enqueue('dev', c2dInput());
    await expectHubError(core.c2d.enqueue('dev', c2dInput()), 'DeviceMaximumQueueDepthExceeded');
  });
}

/** Delivery order, locks (held by a connection or timed) and the available event. */
function lockTests(ctx: CoreContext): void {
  test('lockNext delivers in order, locks, and counts deliveries', async () => {
    const { core } = ctx;
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'first' }));
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'second' }));
    const a = core.c2d.lockNext('dev')!;
    expect(a).toMatchObject({ messageId: 'first', deliveryCount: 1 });
    const b = core.c2d.lockNext('dev')!;
    expect(b).toMatchObject({ messageId: 'second', deliveryCount: 1 });
    expect(core.c2d.lockNext('dev')).toBeUndefined();
    expect(core.c2d.depth('dev')).toBe(2);
    await core.c2d.abandon('dev', a.lockToken);
    expect(core.c2d.lockNext('dev')).toMatchObject({ messageId: 'first', deliveryCount: 2 });
    await core.c2d.complete('dev', b.lockToken);
    expect(core.c2d.depth('dev')).toBe(1);
    await expectHubError(core.c2d.complete('dev', b.lockToken), 'PreconditionFailed');
    await expectHubError(core.c2d.complete('dev', 'no-such-token'), 'PreconditionFailed');
    await expectHubError(core.c2d.complete('ghost', 'x'), 'DeviceNotFound');
    expect(core.c2d.lockNext('ghost')).toBeUndefined();
  });

  test('onAvailable fires on enqueue and abandon', async () => {
    const { core } = ctx;
    const seen: string[] = [];
    const off = core.c2d.onAvailable((id) => seen.push(id));
    await core.c2d.enqueue('dev', c2dInput());
    const m = core.c2d.lockNext('dev')!;
    await core.c2d.abandon('dev', m.lockToken);
    expect(seen).toEqual(['dev', 'dev']);
    off();
    await core.c2d.enqueue('dev', c2dInput());
    expect(seen).toHaveLength(2);
  });

  test('a timed lock (HTTPS) ends by itself: the message comes back and the delivery counts', async () => {
    const { core, clock } = ctx;
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'polled' }));
    const first = core.c2d.lockNext('dev', 60_000)!;
    clock.advance(59_999);
    expect(core.c2d.lockNext('dev')).toBeUndefined();
    clock.advance(1);
    await expectHubError(core.c2d.complete('dev', first.lockToken), 'PreconditionFailed');
    const second = core.c2d.lockNext('dev', 60_000)!;
    expect(second).toMatchObject({ messageId: 'polled', deliveryCount: 2 });
    // Each delivery has its own lock: the lost one cannot settle the new delivery.
    expect(second.lockToken).not.toBe(first.lockToken);
    await expectHubError(core.c2d.complete('dev', first.lockToken), 'PreconditionFailed');
    // Settled in time: the old timer must not unlock it later.
    await core.c2d.complete('dev', second.lockToken);
    clock.advance(60_000);
    expect(core.c2d.depth('dev')).toBe(0);
  });

  test('a lock held by a connection (no timeout) never ends by itself', async () => {
    const { core, clock } = ctx;
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'held' }));
    const held = core.c2d.lockNext('dev')!;
    clock.advance(HOUR / 2);
    expect(core.c2d.lockNext('dev')).toBeUndefined();
    await core.c2d.complete('dev', held.lockToken);
  });
}

/** Messages the hub drops by itself: too many deliveries, or expired. */
function deliveryLimitAndExpiryTests(ctx: CoreContext): void {
  test('the tenth abandon drops the message with DeliveryCountExceeded', async () => {
    const { core, clock } = ctx;
    expect(core.c2d.maxDeliveryCount).toBe(10);
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'bouncy', ack: 'negative' }));
    for (let i = 1; i <= 10; i++) {
      const m = core.c2d.lockNext('dev')!;
      expect(m.deliveryCount).toBe(i);
      await core.c2d.abandon('dev', m.lockToken);
    }
    expect(core.c2d.lockNext('dev')).toBeUndefined();
    expect(core.c2d.depth('dev')).toBe(0);
    clock.advance(BATCH_DELAY);
    expect(await drainFeedback(core)).toEqual([
      expect.objectContaining({
        originalMessageId: 'bouncy',
        deviceId: 'dev',
        statusCode: 'DeliveryCountExceeded',
      }),
    ]);
  });

  test('expiry is noticed lazily and by the clock, with Expired feedback', async () => {
    const { core, clock } = ctx;
    await core.c2d.enqueue(
      'dev',
      c2dInput({ messageId: 'short', ack: 'full', expiryTime: clock.now() + 1000 }),
    );
    await core.c2d.enqueue('dev', c2dInput({ messageId: 'default', ack: 'negative' }));
    clock.advance(999);
    expect(core.c2d.depth('dev')).toBe(2);
    clock.advance(1);
    // The timer already removed it; nobody called lockNext or depth for this device.
    clock.advance(BATCH_DELAY);
    let records = await drainFeedback(core);
    expect(records).toEqual([
      expect.objectContaining({ originalMessageId: 'short', statusCode: 'Expired' }),
    ]);
    expect(core.c2d.depth('dev')).toBe(1);
    clock.advance(HOUR);
    expect(core.c2d.lockNext('dev')).toBeUndefined();
    clock.advance(BATCH_DELAY);
    records = await drainFeedback(core);
    expect(records.map((r) => [r.originalMessageId, r.statusCode])).toEqual([
      ['default', 'Expired'],
    ]);
  });

  test('an offline device (never connected) gets Expired feedback through the timer', async () => {
    const { core, clock } = ctx;
    await core.registry.create({ deviceId: 'offline' });
    await core.c2d.enqueue('offline', c2dInput({ messageId: 'late', ack: 'full' }));
    clock.advance(HOUR + BATCH_DELAY);
    expect(core.feedback.take()?.records).toEqual([
      expect.objectContaining({
        originalMessageId: 'late',
        deviceId: 'offline',
        statusCode: 'Expired',
      }),
    ]);
  });
}

/** Which outcomes each ack mode reports as feedback. */
function ackModeTests(ctx: CoreContext): void {
  test.each<[AckMode, FeedbackStatusCode[]]>([
    ['none', []],
    ['positive', ['Success']],
    ['negative', ['Rejected', 'Purged', 'Expired', 'DeliveryCountExceeded']],
    ['full', ['Success', 'Rejected', 'Purged', 'Expired', 'DeliveryCountExceeded']],
  ])('ack mode %s yields feedback %j', async (ack, expected) => {
    const { core, clock } = ctx;
    const generationId = core.registry.get('dev')!.generationId;
    // Success
    await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'ok' }));
    await core.c2d.complete('dev', core.c2d.lockNext('dev')!.lockToken);
    // Rejected
    await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'no' }));
    await core.c2d.reject('dev', core.c2d.lockNext('dev')!.lockToken);
    // Purged
    await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'p1' }));
    await expect(core.c2d.purge('dev')).resolves.toBe(1);
    // Expired
    await core.c2d.enqueue(
      'dev',
      c2dInput({ ack, messageId: 'old', expiryTime: clock.now() + 10 }),
    );
    clock.advance(10);
    expect(core.c2d.depth('dev')).toBe(0);
    // DeliveryCountExceeded
    await core.c2d.enqueue('dev', c2dInput({ ack, messageId: 'tired' }));
    for (let i = 0; i < 10; i++) await core.c2d.abandon('dev', core.c2d.lockNext('dev')!.lockToken);
    clock.advance(BATCH_DELAY);
    const records = await drainFeedback(core);
    expect(records.map((r) => r.statusCode)).toEqual(expected);
    for (const r of records) {
      expect(r).toMatchObject({ deviceId: 'dev', deviceGenerationId: generationId });
      expect(r.description).not.toBe('');
      expect(Date.parse(r.enqueuedTimeUtc)).not.toBeNaN();
    }
  });
}

/** Removing messages: one dead-lettered, or all purged. */
function deadLetterAndPurgeTests(ctx: CoreContext): void {
  test('deadLetter removes only that message, with DeliveryCountExceeded and the reason', async () => {
    const { core, clock } = ctx;
    await core.c2d.enqueue('dev', c2dInput({ ack: 'negative', messageId: 'bad' }));
    await core.c2d.enqueue('dev', c2dInput({ ack: 'negative', messageId: 'good' }));
    const bad = core.c2d.lockNext('dev')!;
    await core.c2d.deadLetter('dev', bad.lockToken, 'topic too long');
    expect(core.c2d.depth('dev')).toBe(1);
    expect(core.c2d.lockNext('dev')?.messageId).toBe('good');
    clock.advance(BATCH_DELAY);
    expect(await drainFeedback(core)).toEqual([
      expect.objectContaining({
        originalMessageId: 'bad',
        statusCode: 'DeliveryCountExceeded',
        description: 'topic too long',
      }),
    ]);
    await expectHubError(core.c2d.deadLetter('dev', bad.lockToken, 'again'), 'PreconditionFailed');
  });

  test('purge removes queued and locked messages and reports how many', async () => {
    const { core } = ctx;
    for (let i = 0; i < 3; i++) await core.c2d.enqueue('dev', c2dInput({ ack: 'full' }));
    const locked = core.c2d.lockNext('dev')!;
    await expect(core.c2d.purge('dev')).resolves.toBe(3);
    expect(core.c2d.depth('dev')).toBe(0);
    await expectHubError(core.c2d.complete('dev', locked.lockToken), 'PreconditionFailed');
    await expect(core.c2d.purge('dev')).resolves.toBe(0);
    await expectHubError(core.c2d.purge('ghost'), 'DeviceNotFound');
  });
}
