/**
 * GET /devices/{deviceId}/alerts and /deadletters over the telemetry processor's own tables (in
 * memory): newest first, time range and limit, strict validation, storage failures as 503.
 */
import { HttpRequest } from '@azure/functions';
import { RestError } from '@azure/data-tables';
import { createHistoryHandlers } from '../../../../lib/telemetry/history-handlers';
import { AlertList, DeadLetterList } from '../../../../lib/telemetry/history';
import type { EntityStore } from '../../../../lib/storage/entity-store';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { TelemetryProcessor } from '../../../../lib/telemetry/processor';
import { sampleBatch, tutorialEvents } from '../../../../lib/telemetry/sample-events';
import { contextLoggingTo, json, problemType } from '../../../support/http';

const start = new Date('2026-11-23T08:00:00.000Z');

/** sim-0 sends windSpeed 10..19 once a second (threshold 15: five alerts), then a non-JSON body. */
async function seeded(): Promise<MemoryEntityStore> {
  const store = new MemoryEntityStore();
  const processor = new TelemetryProcessor(store, {
    alertThreshold: 15,
    deadLetterMaxBodyBytes: 64,
  });
  const events = tutorialEvents({ count: 10, devices: 1, start, windSpeed: (i) => 10 + i }).map(
    (e, i) => ({ ...e, enqueuedTime: new Date(start.getTime() + i * 1000) }),
  );
  const broken = {
    ...events[0]!,
    body: Buffer.from('not json'),
    enqueuedTime: new Date(start.getTime() + 20_000),
  };
  const batch = sampleBatch([...events, { ...broken, sequenceNumber: 99 }], '1');
  await processor.processBatch(batch.messages, batch.triggerMetadata);
  return store;
}

function get(route: 'alerts' | 'deadletters', deviceId: string, query = ''): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    url: `http://localhost:7071/api/devices/${encodeURIComponent(deviceId)}/${route}${query}`,
    params: { deviceId },
  });
}

function handlers(store: EntityStore) {
  return createHistoryHandlers({ store: () => store, alertThreshold: () => 15 });
}

describe('GET /devices/{deviceId}/alerts', () => {
  it('returns the alerts newest first with the threshold in force', async () => {
    const { alerts } = handlers(await seeded());
    const response = await alerts(get('alerts', 'sim-0'), contextLoggingTo([]));
    expect(response.status).toBe(200);
    const body = AlertList.parse(json(response));
    expect(body.threshold).toBe(15);
    expect(body.items.map((a) => a.windSpeed)).toEqual([19, 18, 17, 16]);
    expect(body.items[0]).toMatchObject({
      deviceId: 'sim-0',
      threshold: 15,
      enqueuedTime: '2026-11-23T08:00:09.000Z',
    });
  });

  it('keeps to the from/to range and the limit', async () => {
    const { alerts } = handlers(await seeded());
    const query = '?from=2026-11-23T08:00:07Z&to=2026-11-23T08:00:08Z';
    const ranged = await alerts(get('alerts', 'sim-0', query), contextLoggingTo([]));
    expect(AlertList.parse(json(ranged)).items.map((a) => a.windSpeed)).toEqual([18, 17]);
    const limited = await alerts(get('alerts', 'sim-0', '?limit=1&code=key'), contextLoggingTo([]));
    expect(AlertList.parse(json(limited)).items.map((a) => a.windSpeed)).toEqual([19]);
  });

  it('refuses a bad limit, an unknown parameter, a bad time and a bad device id', async () => {
    const { alerts } = handlers(await seeded());
    for (const query of ['?limit=0', '?limit=1001', '?limit=x', '?since=1', '?from=yesterday']) {
      const response = await alerts(get('alerts', 'sim-0', query), contextLoggingTo([]));
      expect({ query, status: response.status, type: problemType(response) }).toEqual({
        query,
        status: 400,
        type: 'validation-failed',
      });
    }
    const badId = await alerts(get('alerts', 'bad/id'), contextLoggingTo([]));
    expect(problemType(badId)).toBe('invalid-device-id');
  });

  it('answers 503 when storage fails, without details of the failure', async () => {
    const store = await seeded();
    store.queryPartition = () =>
      Promise.reject(new RestError('connect ECONNREFUSED', { statusCode: 503 }));
    const lines: string[] = [];
    const response = await handlers(store).alerts(get('alerts', 'sim-0'), contextLoggingTo(lines));
    expect({ status: response.status, type: problemType(response) }).toEqual({
      status: 503,
      type: 'storage-unavailable',
    });
    expect(lines.join('\n')).toMatch(/history read failed/);
  });
});

describe('GET /devices/{deviceId}/deadletters', () => {
  it("returns the device's dead letters with reason and body", async () => {
    const { deadLetters } = handlers(await seeded());
    const response = await deadLetters(get('deadletters', 'sim-0'), contextLoggingTo([]));
    expect(response.status).toBe(200);
    const body = DeadLetterList.parse(json(response));
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({
      deviceId: 'sim-0',
      reason: 'not-json',
      bodyText: 'not json',
      bodySize: 8,
    });
  });

  it('is empty for a device without any, and refuses from/to (dead letters may have no time)', async () => {
    const { deadLetters } = handlers(await seeded());
    const none = await deadLetters(get('deadletters', 'other'), contextLoggingTo([]));
    expect(json(none)).toEqual({ items: [] });
    const ranged = await deadLetters(
      get('deadletters', 'sim-0', '?from=2026-11-23T08:00:00Z'),
      contextLoggingTo([]),
    );
    expect(ranged.status).toBe(400);
  });
});
