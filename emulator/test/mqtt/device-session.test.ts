/**
 * C2D delivery on one MQTT connection (DeviceSession) against a real in-memory core, with a
 * recording transport: a message the connection cannot carry is dead-lettered alone, the
 * connection stays up and the messages behind it are published.
 */
import { FakeClock } from '../../core/clock';
import type { FeedbackRecord } from '../../core/contracts';
import { createCore, type InspectableCore } from '../../core/create-core';
import { DeviceSession, type SessionTransport } from '../../mqtt/device-session';

const BATCH_DELAY = 1000;

class RecordingTransport implements SessionTransport {
  published: { topic: string; packetId: number | undefined }[] = [];
  closed: string[] = [];
  failNext: Error | undefined;
  publish(topic: string, _payload: Buffer, _qos: 0 | 1, packetId: number | undefined): void {
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    this.published.push({ topic, packetId });
  }
  close(reason: string): void {
    this.closed.push(reason);
  }
}

let clock: FakeClock;
let core: InspectableCore;
let pending: Promise<void>[];
const warnings: string[] = [];

function session(): DeviceSession {
  return new DeviceSession({
    core,
    log: { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    deviceId: 'dev',
    remoteAddress: 'test',
    token: 'unused',
    expiresAt: clock.now() + 3_600_000,
    c2dWindow: 8,
    track: (work) => pending.push(work),
  });
}

async function feedback(): Promise<FeedbackRecord[]> {
  await Promise.all(pending);
  clock.advance(BATCH_DELAY);
  const records: FeedbackRecord[] = [];
  for (let batch = core.feedback.take(); batch; batch = core.feedback.take()) {
    records.push(...batch.records);
    await core.feedback.settle(batch.batchId);
  }
  return records;
}

beforeEach(async () => {
  clock = new FakeClock();
  pending = [];
  core = await createCore({ clock, feedbackBatchDelayMs: BATCH_DELAY });
  await core.registry.create({ deviceId: 'dev' });
});

afterEach(async () => {
  await core.close();
});

const message = (messageId: string, properties: Record<string, string> = {}) =>
  core.c2d.enqueue('dev', { ack: 'full', messageId, properties, body: Buffer.from(messageId) });

describe('DeviceSession C2D delivery', () => {
  it('dead-letters a message whose topic would exceed 65,535 bytes and publishes the next', async () => {
    await message('too-long', { pad: '%'.repeat(30_000) });
    await message('fine');
    const transport = new RecordingTransport();
    const s = session();
    s.attach(transport);
    s.subscribeC2D();
    expect(transport.published.map((p) => p.topic)).toEqual([
      expect.stringMatching(/^devices\/dev\/messages\/devicebound\/%24.mid=fine&/),
    ]);
    expect(transport.closed).toEqual([]);
    const records = await feedback();
    expect(records).toEqual([
      expect.objectContaining({
        originalMessageId: 'too-long',
        statusCode: 'DeliveryCountExceeded',
        description: expect.stringMatching(/MQTT.*65535-byte limit/) as unknown,
      }),
    ]);
    expect(core.c2d.depth('dev')).toBe(1);
    s.onPuback(transport.published[0]!.packetId!);
    expect(await feedback()).toEqual([
      expect.objectContaining({ originalMessageId: 'fine', statusCode: 'Success' }),
    ]);
    s.close();
  });

  it('dead-letters a message the transport throws on, without closing the connection', async () => {
    await message('poison');
    await message('after');
    const transport = new RecordingTransport();
    transport.failNext = new Error('cannot encode');
    const s = session();
    s.attach(transport);
    s.subscribeC2D();
    expect(transport.published).toHaveLength(1);
    expect(transport.published[0]?.topic).toContain('%24.mid=after&');
    expect(transport.closed).toEqual([]);
    expect(await feedback()).toEqual([
      expect.objectContaining({
        originalMessageId: 'poison',
        statusCode: 'DeliveryCountExceeded',
        description: 'Message cannot be delivered over MQTT: cannot encode',
      }),
    ]);
    s.close();
  });
});
