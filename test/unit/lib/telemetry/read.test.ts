import { HttpRequest, InvocationContext } from '@azure/functions';
import { RestError } from '@azure/data-tables';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { createTelemetryReadHandler } from '../../../../lib/telemetry/http';
import { TelemetryResponse } from '../../../../lib/telemetry/read';
import { TelemetryProcessor } from '../../../../lib/telemetry/processor';
import { sampleBatch, tutorialEvents } from '../../../../lib/telemetry/sample-events';

const start = new Date('2026-11-23T08:00:00.000Z');

async function seeded() {
  const store = new MemoryEntityStore();
  const processor = new TelemetryProcessor(store, {
    alertThreshold: 15,
    deadLetterMaxBodyBytes: 64,
  });
  // 10 readings of device sim-0, one per second, windSpeed = index.
  const events = tutorialEvents({ count: 10, devices: 1, start, windSpeed: (i) => i }).map(
    (e, i) => ({ ...e, enqueuedTime: new Date(start.getTime() + i * 1000) }),
  );
  const batch = sampleBatch(events, '2');
  await processor.processBatch(batch.messages, batch.triggerMetadata);
  return { store, handler: createTelemetryReadHandler(() => store) };
}

function get(deviceId: string, query = '') {
  return new HttpRequest({
    method: 'GET',
    url: `http://localhost:7071/api/devices/${encodeURIComponent(deviceId)}/telemetry${query}`,
    params: { deviceId },
  });
}

function json(response: { body?: unknown }): Record<string, unknown> {
  return JSON.parse(String(response.body)) as Record<string, unknown>;
}

describe('GET /devices/{deviceId}/telemetry', () => {
  it('returns readings newest first with provenance, and the latest state', async () => {
    const { handler } = await seeded();
    const response = await handler(get('sim-0', '?limit=3'), new InvocationContext());
    expect(response.status).toBe(200);
    expect(response.headers).toMatchObject({
      'Content-Type': expect.stringContaining('application/json'),
    });
    const body = json(response);
    expect(body.items).toEqual([
      expect.objectContaining({
        windSpeed: 9,
        deviceId: 'sim-0',
        messageId: 'msg-9',
        correlationId: 'corr-9',
        enqueuedTime: new Date(start.getTime() + 9000).toISOString(),
        partition: '2',
        sequenceNumber: 9,
        properties: { property: 'value-9' },
      }),
      expect.objectContaining({ windSpeed: 8 }),
      expect.objectContaining({ windSpeed: 7 }),
    ]);
    expect(body.latest).toMatchObject({ windSpeed: 9, sequenceNumber: 9 });
    // The documented response schema describes what the route really sends.
    expect(TelemetryResponse.strict().safeParse(body).success).toBe(true);
  });

  it('filters by an inclusive from/to range', async () => {
    const { handler } = await seeded();
    const from = new Date(start.getTime() + 2000).toISOString();
    const to = new Date(start.getTime() + 4000).toISOString();
    const response = await handler(get('sim-0', `?from=${from}&to=${to}`), new InvocationContext());
    const body = json(response);
    expect((body.items as { windSpeed: number }[]).map((i) => i.windSpeed)).toEqual([4, 3, 2]);
  });

  it('accepts an offset whose + arrived as a space', async () => {
    const { handler } = await seeded();
    const to = '2026-11-23T09:00:03 01:00'; // 08:00:03Z, with "+" decoded to a space
    const body = json(await handler(get('sim-0', `?to=${to}&limit=1`), new InvocationContext()));
    expect(body.items).toEqual([expect.objectContaining({ windSpeed: 3 })]);
  });

  it('answers an unknown device with no items and no latest', async () => {
    const { handler } = await seeded();
    const body = json(await handler(get('nobody'), new InvocationContext()));
    expect(body).toEqual({ items: [] });
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=1001', 'limit'],
    ['?limit=ten', 'limit'],
    ['?from=yesterday', 'from'],
    ['?to=2026-13-01T00:00:00Z', 'to'],
    ['?from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z', 'from'],
  ])('rejects %s with problem+json', async (query, field) => {
    const { handler } = await seeded();
    const response = await handler(get('sim-0', query), new InvocationContext());
    expect(response.status).toBe(400);
    expect(response.headers).toMatchObject({ 'Content-Type': 'application/problem+json' });
    const body = json(response);
    expect(body).toMatchObject({ status: 400, type: expect.stringContaining('validation') });
    expect(JSON.stringify(body.errors)).toContain(field);
  });

  it('rejects an invalid device id', async () => {
    const { handler } = await seeded();
    const response = await handler(get('a'.repeat(129)), new InvocationContext());
    expect(response.status).toBe(400);
    expect(json(response)).toMatchObject({
      type: expect.stringContaining('invalid-device-id'),
    });
  });

  it('answers 503 problem+json when storage is unreachable', async () => {
    const { store, handler } = await seeded();
    store.failure = () => new RestError('connect ECONNREFUSED', { code: 'ECONNREFUSED' });
    const response = await handler(get('sim-0'), new InvocationContext());
    expect(response.status).toBe(503);
    expect(json(response)).toMatchObject({
      status: 503,
      type: expect.stringContaining('storage'),
    });
  });
});
