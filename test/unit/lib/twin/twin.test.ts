/**
 * The twin routes against a fake of the registry's twin operations that behaves as IoT Hub
 * documents (If-Match, JSON merge patch, versions, 413 over the size limit).
 */
import { InvocationContext } from '@azure/functions';
import { errors } from 'azure-iot-common';
import { twinLimits } from '../../../../lib/twin/limits';
import { createTwinHandlers } from '../../../../lib/twin/twin-handlers';
import { TwinService } from '../../../../lib/twin/twin-service';
import type { HubTwin, HubTwinPatch, TwinClient } from '../../../../lib/twin/twin-client';
import { apiRequest, expectProblem, header, json } from '../../../support/http';

type JsonObject = Record<string, unknown>;

function merge(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    if (value === null) delete target[key];
    else if (typeof value === 'object' && !Array.isArray(value)) {
      const child = typeof current === 'object' && current !== null ? (current as JsonObject) : {};
      merge(child, value as JsonObject);
      target[key] = child;
    } else target[key] = value;
  }
}

class FakeTwins implements TwinClient {
  etag = 'AAAAAAAAAAE=';
  version = 1;
  tags: JsonObject = {};
  desired: JsonObject = {};
  desiredVersion = 1;
  reported: JsonObject = { telemetryIntervalSeconds: 10 };
  patches: { patch: HubTwinPatch; etag: string }[] = [];
  /** The size the fake hub allows for merged desired properties (IoT Hub: 32 KB). */
  desiredLimit = Infinity;

  private twin(deviceId: string): HubTwin {
    return {
      deviceId,
      etag: this.etag,
      version: this.version,
      status: 'enabled',
      connectionState: 'Connected',
      tags: structuredClone(this.tags),
      properties: {
        desired: {
          ...structuredClone(this.desired),
          $metadata: { $lastUpdated: '2026-01-01T00:00:00Z' },
          $version: this.desiredVersion,
        },
        reported: { ...structuredClone(this.reported), $metadata: {}, $version: 4 },
      },
    };
  }

  get(deviceId: string): Promise<HubTwin> {
    if (deviceId === 'ghost') return Promise.reject(new errors.DeviceNotFoundError('no'));
    return Promise.resolve(this.twin(deviceId));
  }

  update(deviceId: string, patch: HubTwinPatch, etag: string): Promise<HubTwin> {
    this.patches.push({ patch, etag });
    if (etag !== '*' && etag !== this.etag) {
      return Promise.reject(new errors.InvalidEtagError('etag mismatch'));
    }
    const desired = structuredClone(this.desired);
    if (patch.properties) merge(desired, patch.properties.desired);
    if (JSON.stringify(desired).length > this.desiredLimit) {
      return Promise.reject(
        Object.assign(new Error('too large'), { response: { statusCode: 413 } }),
      );
    }
    this.desired = desired;
    if (patch.properties) this.desiredVersion += 1;
    if (patch.tags) merge(this.tags, patch.tags);
    this.version += 1;
    this.etag = `etag-${this.version}`;
    return Promise.resolve(this.twin(deviceId));
  }
}

const url = 'https://app.example/api/devices/sim-1/twin';
const params = { deviceId: 'sim-1' };

function setup() {
  const hub = new FakeTwins();
  const twins = new TwinService(hub);
  const handlers = createTwinHandlers(() => ({ twins }));
  return { hub, handlers, context: () => new InvocationContext() };
}

function patch(body: unknown, headers: Record<string, string> = { 'if-match': '*' }) {
  return apiRequest('PATCH', url, { body: JSON.stringify(body), headers, params });
}

describe('GET /devices/{deviceId}/twin', () => {
  it('answers tags, desired and reported with their versions and the etag, without $metadata', async () => {
    const { handlers, hub, context } = setup();
    hub.tags = { site: 'north' };
    hub.desired = { telemetryIntervalSeconds: 5 };
    const response = await handlers.get(apiRequest('GET', url, { params }), context());
    expect(response.status).toBe(200);
    expect(header(response, 'ETag')).toBe('"AAAAAAAAAAE="');
    expect(json(response)).toEqual({
      deviceId: 'sim-1',
      etag: 'AAAAAAAAAAE=',
      version: 1,
      status: 'enabled',
      connectionState: 'Connected',
      tags: { site: 'north' },
      desired: {
        version: 1,
        lastUpdated: '2026-01-01T00:00:00Z',
        properties: { telemetryIntervalSeconds: 5 },
      },
      reported: { version: 4, properties: { telemetryIntervalSeconds: 10 } },
    });
  });

  it('answers 404 for an unknown device and 400 for a malformed id', async () => {
    const { handlers, context } = setup();
    const missing = await handlers.get(
      apiRequest('GET', url, { params: { deviceId: 'ghost' } }),
      context(),
    );
    expectProblem(missing, 404, 'device-not-found');
    const bad = await handlers.get(
      apiRequest('GET', url, { params: { deviceId: 'a;b' } }),
      context(),
    );
    expectProblem(bad, 400, 'invalid-device-id');
  });
});

describe('PATCH /devices/{deviceId}/twin', () => {
  it('merges desired properties and tags when If-Match is the current etag', async () => {
    const { handlers, hub, context } = setup();
    hub.tags = { site: 'north', floor: 2 };
    const response = await handlers.update(
      patch(
        { desired: { telemetryIntervalSeconds: 30 }, tags: { floor: null, room: 'a' } },
        { 'if-match': '"AAAAAAAAAAE="' },
      ),
      context(),
    );
    expect(response.status).toBe(200);
    expect(hub.patches[0]).toEqual({
      etag: 'AAAAAAAAAAE=',
      patch: {
        tags: { floor: null, room: 'a' },
        properties: { desired: { telemetryIntervalSeconds: 30 } },
      },
    });
    const twin = json<{ tags: unknown; desired: { version: number; properties: unknown } }>(
      response,
    );
    expect(twin.tags).toEqual({ site: 'north', room: 'a' });
    expect(twin.desired).toMatchObject({
      version: 2,
      properties: { telemetryIntervalSeconds: 30 },
    });
    expect(header(response, 'ETag')).toBe('"etag-2"');
  });

  it('answers 428 without If-Match and changes nothing', async () => {
    const { handlers, hub, context } = setup();
    const response = await handlers.update(patch({ desired: { a: 1 } }, {}), context());
    expectProblem(response, 428, 'precondition-required');
    expect(hub.patches).toHaveLength(0);
  });

  it('answers 412 when the twin changed since the etag', async () => {
    const { handlers, context } = setup();
    const response = await handlers.update(
      patch({ desired: { a: 1 } }, { 'if-match': '"stale"' }),
      context(),
    );
    expectProblem(response, 412, 'precondition-failed');
  });

  it.each([
    ['an empty patch', {}, ''],
    ['a property name with a dot', { desired: { 'a.b': 1 } }, "'.'"],
    ['a property name with a space', { tags: { 'a b': 1 } }, "'.'"],
    ['a $-name', { desired: { $version: 3 } }, "'$'"],
    ['an unknown section', { reported: { a: 1 } }, ''],
    ['a string over 4 KB', { desired: { a: 'x'.repeat(twinLimits.stringBytes + 1) } }, '4096'],
  ])('answers 400 for %s and changes nothing', async (_name, body, mention) => {
    const { handlers, hub, context } = setup();
    const response = await handlers.update(patch(body), context());
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(String(problem.detail)).toContain(mention);
    expect(hub.patches).toHaveLength(0);
  });

  it('answers 400 naming the depth limit for objects nested more than 10 levels', async () => {
    const { handlers, hub, context } = setup();
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i += 1) deep = { [`l${i}`]: deep };
    const response = await handlers.update(patch({ desired: deep }), context());
    const problem = expectProblem(response, 400, 'validation-failed');
    expect(String(problem.detail)).toContain('10 levels');
    expect(hub.patches).toHaveLength(0);
    let allowed: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 9; i += 1) allowed = { [`l${i}`]: allowed };
    const ok = await handlers.update(patch({ desired: allowed }), context());
    expect(ok.status).toBe(200);
  });

  it('answers 413 naming the limit when tags exceed 8 KB, counted as IoT Hub counts', async () => {
    const { handlers, hub, context } = setup();
    // Key "t<i>" (2–4 chars) plus a 1,000-character value, nine times: over 8,192.
    const tags = Object.fromEntries(
      Array.from({ length: 9 }, (_, i) => [`t${i}`, 'x'.repeat(1000)]),
    );
    const response = await handlers.update(patch({ tags }), context());
    const problem = expectProblem(response, 413, 'payload-too-large');
    expect(String(problem.detail)).toContain(`${twinLimits.tagsBytes} bytes`);
    expect(hub.patches).toHaveLength(0);
  });

  it('answers 413 when IoT Hub refuses the merged twin as too large', async () => {
    const { handlers, hub, context } = setup();
    hub.desiredLimit = 20;
    const response = await handlers.update(
      patch({ desired: { something: 'long enough' } }),
      context(),
    );
    const problem = expectProblem(response, 413, 'payload-too-large');
    expect(String(problem.detail)).toContain(`${twinLimits.desiredBytes} bytes`);
  });
});
