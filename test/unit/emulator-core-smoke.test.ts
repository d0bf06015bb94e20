import { FakeClock } from '../../emulator/core/clock';
import { createCore } from '../../emulator/core/create-core';

test('smoke', async () => {
  const clock = new FakeClock();
  const core = await createCore({ clock, feedbackBatchDelayMs: 1000 });
  const d = await core.registry.create({ deviceId: 'dev-1' });
  expect(d.keys.primaryKey).toHaveLength(44);
  const m = await core.c2d.enqueue('dev-1', {
    ack: 'full',
    properties: {},
    body: Buffer.from('x'),
  });
  const locked = core.c2d.lockNext('dev-1');
  expect(locked?.messageId).toBe(m.messageId);
  await core.c2d.complete('dev-1', locked!.lockToken);
  clock.advance(1000);
  const batch = core.feedback.take();
  expect(batch?.records[0]?.statusCode).toBe('Success');
  const e = await core.d2c.append({
    deviceId: 'dev-1',
    body: Buffer.from('t'),
    properties: {},
    generationId: d.generationId,
    authMethod: '{}',
  });
  expect(core.d2c.read(e.partitionId, 0, 10)).toHaveLength(1);
  await core.close();
});
