import { HttpRequest, type HttpResponseInit } from '@azure/functions';
import { errors } from 'azure-iot-common';
import { createMessageHandlers } from '../../../../lib/messages/message-handlers';
import { createApiServices } from '../../../../lib/app/services';
import type { RegistryClient } from '../../../../lib/iothub/clients';
import { FakeServiceClient } from '../../../support/fake-service-client';
import { ManualClock } from '../../../support/clock';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';
import { putStatusRow, statusRow, statusRows } from '../../../support/status-rows';
import { contextLoggingTo, header, json } from '../../../support/http';

const base = 'https://app.example/api/devices/d1/messages';

function setup() {
  const client = new FakeServiceClient();
  const table = new MemoryEntityStore();
  const clock = new ManualClock();
  let created = 0;
  const services = createApiServices({
    registry: {} as RegistryClient,
    serviceClient: () => {
      created += 1;
      return client;
    },
    statusStore: table,
    hubHostName: 'hub',
    clock,
  });
  const handlers = createMessageHandlers(() => services);
  const logs: string[] = [];
  const context = () => contextLoggingTo(logs);
  return { client, table, clock, handlers, context, logs, clientsCreated: () => created };
}

function send(body: unknown, query = '', deviceId = 'd1'): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: `https://app.example/api/devices/${encodeURIComponent(deviceId)}/messages${query}`,
    body: { string: typeof body === 'string' ? body : JSON.stringify(body) },
    headers: { 'content-type': 'application/json' },
    params: { deviceId },
  });
}

function statusRequest(messageId: string, deviceId = 'd1'): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    url: `${base}/${encodeURIComponent(messageId)}`,
    params: { deviceId, messageId },
  });
}

function expectProblem(response: HttpResponseInit, status: number, slug: string) {
  expect(response.status).toBe(status);
  expect(header(response, 'Content-Type')).toBe('application/problem+json');
  const body = json(response);
  expect(body.type).toBe(`https://iot-hub-functions.dev/problems/${slug}`);
  return body;
}

describe('POST /devices/{deviceId}/messages', () => {
  it('sends a JSON payload as UTF-8 JSON and answers 202 with a status URL', async () => {
    const { handlers, context, client, table, clock } = setup();
    const response = await handlers.send(
      send({
        payload: { command: 'reboot', delay: 5 },
        messageId: 'm-1',
        correlationId: 'c-1',
        properties: { priority: 'high' },
        ack: 'full',
        ttlSeconds: 120,
      }),
      context(),
    );
    expect(response.status).toBe(202);
    expect(json(response)).toEqual({
      messageId: 'm-1',
      status: 'enqueued',
      statusUrl: '/api/devices/d1/messages/m-1',
    });
    expect(client.sent).toHaveLength(1);
    const { deviceId, message } = client.sent[0]!;
    expect(deviceId).toBe('d1');
    expect(JSON.parse((message.getData() as Buffer).toString())).toEqual({
      command: 'reboot',
      delay: 5,
    });
    expect(message.messageId).toBe('m-1');
    expect(message.correlationId).toBe('c-1');
    expect(message.ack).toBe('full');
    expect(message.contentType).toBe('application/json');
    expect(message.contentEncoding).toBe('utf-8');
    expect(message.properties.getValue('priority')).toBe('high');
    expect(message.expiryTimeUtc).toBe(clock.time + 120_000);
    expect(statusRow(table, 'd1|m-1')).toMatchObject({
      deviceId: 'd1',
      messageId: 'm-1',
      status: 'enqueued',
      ack: 'full',
      enqueuedAt: '2026-01-01T00:00:00.000Z',
    });
  });

  it('sends a string payload as UTF-8 text and generates a message id', async () => {
    const { handlers, context, client } = setup();
    const response = await handlers.send(send({ payload: 'héllo' }), context());
    expect(response.status).toBe(202);
    const { message } = client.sent[0]!;
    expect((message.getData() as Buffer).toString('utf8')).toBe('héllo');
    expect(message.contentType).toBe('text/plain');
    expect(message.contentEncoding).toBe('utf-8');
    expect(message.ack).toBe('none');
    expect(message.expiryTimeUtc).toBeUndefined();
    expect(message.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(json(response).messageId).toBe(message.messageId);
  });

  it('keeps a given content type', async () => {
    const { handlers, context, client } = setup();
    await handlers.send(send({ payload: '<a/>', contentType: 'application/xml' }), context());
    expect(client.sent[0]!.message.contentType).toBe('application/xml');
  });

  it('reuses one service client across requests', async () => {
    const { handlers, context, client, clientsCreated } = setup();
    await handlers.send(send({ payload: 1 }), context());
    await handlers.send(send({ payload: 2 }), context());
    expect(clientsCreated()).toBe(1);
    expect(client.opens).toBe(1);
  });

  it('opens a new client after the connection drops', async () => {
    const { handlers, context, client, clientsCreated } = setup();
    await handlers.send(send({ payload: 1 }), context());
    client.drop();
    await handlers.send(send({ payload: 2 }), context());
    expect(clientsCreated()).toBe(2);
  });

  it('answers 404 for an unknown device and records nothing', async () => {
    const { handlers, context, client, table } = setup();
    client.sendError = new errors.DeviceNotFoundError('no device');
    expectProblem(await handlers.send(send({ payload: 1 }), context()), 404, 'device-not-found');
    expect(statusRows(table)).toHaveLength(0);
  });

  it("answers 409 with a queue-full title when the device's queue is full", async () => {
    const { handlers, context, client, table } = setup();
    client.sendError = new errors.DeviceMaximumQueueDepthExceededError('full');
    const body = expectProblem(
      await handlers.send(send({ payload: 1 }), context()),
      409,
      'device-queue-full',
    );
    expect(body.title).toMatch(/queue is full/i);
    expect(statusRows(table)).toHaveLength(0);
  });

  it('answers 503 and reconnects next time when the hub is unreachable', async () => {
    const { handlers, context, client, clientsCreated } = setup();
    client.openError = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expectProblem(await handlers.send(send({ payload: 1 }), context()), 503, 'hub-unavailable');
    client.openError = undefined;
    const response = await handlers.send(send({ payload: 1 }), context());
    expect(response.status).toBe(202);
    expect(clientsCreated()).toBe(2);
  });

  it('still answers 202 when the message was sent but its status row could not be written', async () => {
    const { handlers, context, client, table, logs } = setup();
    table.failure = () => new Error('storage down');
    const response = await handlers.send(send({ payload: 1, messageId: 'm' }), context());
    expect(response.status).toBe(202);
    expect(client.sent).toHaveLength(1);
    expect(logs.join('\n')).toContain('status row was not written');
  });

  it.each([
    ['no payload', {}, 'validation-failed'],
    ['an unknown field', { payload: 1, priority: 'high' }, 'validation-failed'],
    ['a ttl below 60 s', { payload: 1, ttlSeconds: 59 }, 'validation-failed'],
    ['a ttl above 48 h', { payload: 1, ttlSeconds: 172801 }, 'validation-failed'],
    ['a fractional ttl', { payload: 1, ttlSeconds: 60.5 }, 'validation-failed'],
    ['an unknown ack', { payload: 1, ack: 'always' }, 'validation-failed'],
    ['a bad message id', { payload: 1, messageId: 'a b' }, 'validation-failed'],
    ['a non-string property', { payload: 1, properties: { a: 1 } }, 'validation-failed'],
    [
      'a reserved property',
      { payload: 1, properties: { 'iothub-ack': 'full' } },
      'validation-failed',
    ],
    ['malformed JSON', '{"payload":', 'invalid-json'],
  ])('refuses %s with 400 and sends nothing', async (_what, body, slug) => {
    const { handlers, context, client } = setup();
    expectProblem(await handlers.send(send(body), context()), 400, slug);
    expect(client.sent).toHaveLength(0);
  });

  it.each(['?wait=61', '?wait=-1', '?wait=soon'])('refuses %s', async (query) => {
    const { handlers, context, client } = setup();
    expectProblem(
      await handlers.send(send({ payload: 1 }, query), context()),
      400,
      'validation-failed',
    );
    expect(client.sent).toHaveLength(0);
  });

  it('refuses a payload over 64 KB with 413', async () => {
    const { handlers, context, client } = setup();
    const response = await handlers.send(send({ payload: 'x'.repeat(64 * 1024) }), context());
    expectProblem(response, 413, 'payload-too-large');
    expect(client.sent).toHaveLength(0);
  });

  describe('IoT Hub limits', () => {
    // Counted: payload + message id + `to` (/devices/d1/messages/devicebound, 32) + content type
    // (text/plain, 10) + encoding (utf-8, 5) + property names and values (k + v).
    const atLimit = (extra: number) => ({
      payload: 'x'.repeat(64 * 1024 - 'm1'.length - 32 - 10 - 5 - 2 + extra),
      messageId: 'm1',
      properties: { k: 'v' },
    });

    it('sends a message of exactly 64 KB counting ids, content type and properties', async () => {
      const { handlers, context, client } = setup();
      const response = await handlers.send(send(atLimit(0)), context());
      expect(response.status).toBe(202);
      expect(client.sent).toHaveLength(1);
    });

    it('refuses one byte more with 413 naming the limit, and sends nothing', async () => {
      const { handlers, context, client } = setup();
      const body = expectProblem(
        await handlers.send(send(atLimit(1)), context()),
        413,
        'payload-too-large',
      );
      expect(body.detail).toMatch(/65537 bytes.*65536 bytes/);
      expect(client.sent).toHaveLength(0);
    });

    it('refuses properties whose URL-encoded MQTT topic would exceed 65,535 bytes', async () => {
      const { handlers, context, client } = setup();
      // 30,000 bytes counted, 90,000 once `%` is encoded as %25.
      const response = await handlers.send(
        send({ payload: 1, properties: { pad: '%'.repeat(30_000) } }),
        context(),
      );
      const body = expectProblem(response, 413, 'payload-too-large');
      expect(body.detail).toMatch(/MQTT topic.*65535/);
      expect(client.sent).toHaveLength(0);
    });

    it.each([
      ['a space in a value', { note: 'two words' }],
      ['a slash in a name', { 'a/b': 'v' }],
      ['a non-ASCII value', { note: 'é' }],
    ])('refuses %s with 400', async (_what, properties) => {
      const { handlers, context, client } = setup();
      const response = await handlers.send(send({ payload: 1, properties }), context());
      expectProblem(response, 400, 'validation-failed');
      expect(client.sent).toHaveLength(0);
    });

    it('refuses a payload nested 1,700 arrays deep with 400, not a stack overflow', async () => {
      const { handlers, context, client } = setup();
      const deep = `{"payload":${'['.repeat(1700)}${']'.repeat(1700)}}`;
      const response = await handlers.send(send(deep), context());
      const body = expectProblem(response, 400, 'validation-failed');
      expect(body.detail).toMatch(/64 levels/);
      expect(client.sent).toHaveLength(0);
    });

    it('accepts a payload nested 60 levels deep', async () => {
      const { handlers, context, client } = setup();
      const deep = `{"payload":${'['.repeat(60)}${']'.repeat(60)}}`;
      expect((await handlers.send(send(deep), context())).status).toBe(202);
      expect(client.sent).toHaveLength(1);
    });
  });

  it('refuses an invalid device id with 400', async () => {
    const { handlers, context } = setup();
    expectProblem(
      await handlers.send(send({ payload: 1 }, '', 'bad/id'), context()),
      400,
      'invalid-device-id',
    );
  });

  it('with ?wait answers 200 once feedback records the outcome', async () => {
    const { handlers, context, table, clock } = setup();
    clock.onSleep = async () => {
      // The feedback timer records delivery while the request waits.
      if (clock.sleeps === 2) {
        await putStatusRow(table, 'd1|m-7', {
          ...(statusRow(table, 'd1|m-7') as Record<string, string>),
          status: 'delivered',
          updatedAt: new Date(clock.now()).toISOString(),
        });
      }
    };
    const response = await handlers.send(
      send({ payload: 1, messageId: 'm-7', ack: 'full' }, '?wait=10'),
      context(),
    );
    expect(response.status).toBe(200);
    expect(json(response)).toMatchObject({ messageId: 'm-7', deviceId: 'd1', status: 'delivered' });
  });

  it('with ?wait and ack none answers 202 at once (no feedback will come)', async () => {
    const { handlers, context, clock } = setup();
    const response = await handlers.send(send({ payload: 1 }, '?wait=30'), context());
    expect(response.status).toBe(202);
    expect(clock.sleeps).toBe(0);
  });

  it('with ?wait answers 202 when no outcome arrives in time', async () => {
    const { handlers, context, clock } = setup();
    const started = clock.time;
    const response = await handlers.send(send({ payload: 1, ack: 'full' }, '?wait=3'), context());
    expect(response.status).toBe(202);
    expect(json(response).status).toBe('enqueued');
    expect(clock.time - started).toBe(3000);
  });
});

describe('GET /devices/{deviceId}/messages/{messageId}', () => {
  it('returns the recorded status', async () => {
    const { handlers, context } = setup();
    await handlers.send(send({ payload: 1, messageId: 'm#1', ack: 'positive' }), context());
    const response = await handlers.status(statusRequest('m#1'), context());
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({
      messageId: 'm#1',
      deviceId: 'd1',
      status: 'enqueued',
      ack: 'positive',
      enqueuedAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
  });

  it('answers 404 for an unknown message', async () => {
    const { handlers, context } = setup();
    expectProblem(
      await handlers.status(statusRequest('nope'), context()),
      404,
      'message-not-found',
    );
  });

  it('answers 503 when storage is down', async () => {
    const { handlers, context, table } = setup();
    table.failure = () =>
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expectProblem(await handlers.status(statusRequest('m'), context()), 503, 'storage-unavailable');
  });
});
