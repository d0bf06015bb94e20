import type { Timer } from '@azure/functions';
import { createApiServices } from '../../../../lib/app/services';
import type { RegistryClient } from '../../../../lib/iothub/clients';
import { FakeServiceClient } from '../../../support/fake-service-client';
import { parseFeedback } from '../../../../lib/messages/feedback';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { putStatusRow, statusRow } from '../../../support/status-rows';
import { createFeedbackTimer } from '../../../../lib/messages/feedback-timer';
import { contextLoggingTo } from '../../../support/http';

const record = (messageId: string, statusCode: string, deviceId = 'd1') => ({
  originalMessageId: messageId,
  deviceId,
  deviceGenerationId: 'g',
  enqueuedTimeUtc: '2026-01-01T00:00:00Z',
  statusCode,
  description: statusCode === 'Success' ? 'Success' : `Message ${statusCode}`,
});

function setup() {
  const client = new FakeServiceClient();
  const table = new MemoryEntityStore();
  const services = createApiServices({
    registry: {} as RegistryClient,
    serviceClient: () => client,
    statusStore: table,
    hubHostName: 'hub',
    feedbackDrainMs: 1000,
  });
  const logs: string[] = [];
  const context = contextLoggingTo(logs);
  const timer = createFeedbackTimer(() => services);
  const run = () => timer({} as Timer, context);
  return { client, table, services, logs, run };
}

describe('parseFeedback', () => {
  it.each([
    ['Success', 'delivered'],
    ['Expired', 'expired'],
    ['DeliveryCountExceeded', 'deliveryCountExceeded'],
    ['Rejected', 'rejected'],
    ['Purged', 'purged'],
  ])('maps %s to %s', (code, state) => {
    const parsed = parseFeedback(Buffer.from(JSON.stringify([record('m', code)])));
    expect(parsed.outcomes).toEqual([
      expect.objectContaining({ deviceId: 'd1', messageId: 'm', status: state }),
    ]);
  });

  it('skips records it cannot attribute or does not know', () => {
    const parsed = parseFeedback(
      JSON.stringify([
        record('m', 'Success'),
        record('m2', 'Teleported'),
        { statusCode: 'Success' },
      ]),
    );
    expect(parsed.outcomes).toHaveLength(1);
    expect(parsed.skipped).toBe(2);
  });

  it('throws on bodies that are not a JSON array', () => {
    expect(() => parseFeedback(Buffer.from('not json'))).toThrow('not JSON');
    expect(() => parseFeedback(Buffer.from('{"a":1}'))).toThrow('not a JSON array');
    expect(() => parseFeedback(42)).toThrow();
  });
});

describe('feedback timer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('stores every outcome and completes each batch only after its rows are written', async () => {
    const { client, table, run } = setup();
    await putStatusRow(table, 'd1|m1', {
      deviceId: 'd1',
      messageId: 'm1',
      status: 'enqueued',
      ack: 'full',
    });
    const running = run();
    await jest.advanceTimersByTimeAsync(10);
    const batch = [record('m1', 'Success'), record('m2', 'Expired', 'd#2')];
    // Completion must come after both writes: note what was stored when it happened.
    const writesAtCompletion: (string | undefined)[][] = [];
    client.receiver.deliver(batch, 'b1', () =>
      writesAtCompletion.push(
        ['d1|m1', 'd%232|m2'].map((address) => statusRow(table, address)?.status as string),
      ),
    );
    await jest.advanceTimersByTimeAsync(1000);
    await running;
    expect(client.receiver.settled).toEqual(['complete:b1']);
    expect(writesAtCompletion).toEqual([['delivered', 'expired']]);
    expect(statusRow(table, 'd1|m1')).toMatchObject({
      status: 'delivered',
      ack: 'full',
      description: 'Success',
    });
    // A record for a message this API never recorded creates its row.
    expect(statusRow(table, 'd%232|m2')).toMatchObject({
      deviceId: 'd#2',
      messageId: 'm2',
      status: 'expired',
    });
  });

  it('keeps a batch whose rows could not be written, and stores it on the next run', async () => {
    const { client, table, run, logs } = setup();
    const first = run();
    await jest.advanceTimersByTimeAsync(10);
    table.failure = () => new Error('storage down');
    client.receiver.deliver([record('m1', 'Rejected')], 'b1');
    const failed = expect(first).rejects.toThrow('Feedback drain failed');
    await jest.advanceTimersByTimeAsync(1000);
    await failed;
    expect(client.receiver.settled).toEqual([]);
    expect(logs.join('\n')).toContain('drain failed');

    table.failure = undefined;
    const second = run();
    await jest.advanceTimersByTimeAsync(1000);
    await second;
    expect(client.receiver.settled).toEqual(['complete:b1']);
    expect(statusRow(table, 'd1|m1')?.status).toBe('rejected');
    expect(client.receiverRequests).toBe(1);
  });

  it('buffers batches that arrive between runs', async () => {
    const { client, table, run } = setup();
    const first = run();
    await jest.advanceTimersByTimeAsync(1000);
    await first;
    client.receiver.deliver([record('late', 'Purged')], 'late');
    expect(client.receiver.settled).toEqual([]);
    const second = run();
    await jest.advanceTimersByTimeAsync(1000);
    await second;
    expect(client.receiver.settled).toEqual(['complete:late']);
    expect(statusRow(table, 'd1|late')?.status).toBe('purged');
  });

  it('rejects malformed batches instead of replaying them forever', async () => {
    const { client, run, logs } = setup();
    const running = run();
    await jest.advanceTimersByTimeAsync(10);
    client.receiver.deliver('garbage', 'bad');
    await jest.advanceTimersByTimeAsync(1000);
    await running;
    expect(client.receiver.settled).toEqual(['reject:bad']);
    expect(logs.join('\n')).toMatch(/malformed/);
  });

  it('returns after the drain time when nothing arrives', async () => {
    const { run, logs } = setup();
    const running = run();
    await jest.advanceTimersByTimeAsync(1000);
    await running;
    expect(logs.join('\n')).toContain('0 batches');
  });
});
