/**
 * The tutorial end to end on the whole local stack (`node dist/devhost/stack/stack.js` on ephemeral
 * ports, its own data folder): the REST API over HTTP as curl would call it, with the function key
 * the stack printed, and the official device SDK (MQTT) as the device. Every response is checked
 * against the OpenAPI document the stack serves.
 *
 * Needs `npm run build` (the stack runs from `dist/`). Under `npm test` the test CA is copied
 * into the stack's data folder, as for every emulator in the run; the device is also handed the
 * stack's CA explicitly, so plain `npx jest` works too.
 *
 * The stack is shared, but every test sets up what it needs (its own device, connected when it
 * needs one), so any test runs alone (`-t`) or in any order.
 */
import { Message } from 'azure-iot-device';
import type { ApiResponse, StackProcess, TestDevice } from './support';
import {
  Api,
  asRecord,
  connectDevice,
  messageText,
  createStackDataDir,
  OpenApiChecker,
  readTable,
  readTelemetry,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';
import { apiOperations } from '../support/api-routes';

jest.setTimeout(120_000);

const problemBase = 'https://iot-hub-functions.dev/problems/';
const deviceId = 'tutorial-device';
const simulatorDevices = ['sim-1', 'sim-2'];
/** The ids the creation test's refused requests name: none of them may exist afterwards. */
const refusedIds = [
  'unknown-field-device',
  'wrong-type-device',
  'wrong-status-device',
  'form-device',
];

let dataDir: string;
let stack: StackProcess;
let api: Api;
let openApi: OpenApiChecker;
let storage: string;
/** Devices the tests connected; closed after the suite. */
const connected: TestDevice[] = [];

/** The response is documented for the operation, and its body matches the documented schema. */
function expectDocumented(method: string, template: string, response: ApiResponse): void {
  expect(openApi.check(method, template, response)).toEqual([]);
}

/** A problem+json with the documented status and type, and nothing secret in it. */
function expectProblem(
  method: string,
  template: string,
  response: ApiResponse,
  status: number,
  slug: string,
): void {
  expect({ status: response.status, type: asRecord(response.body).type }).toEqual({
    status,
    type: `${problemBase}${slug}`,
  });
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(asRecord(response.body).status).toBe(status);
  expect(response.text).not.toMatch(/SharedAccessKey|sig=|\bat .+\.js:\d+/);
  expect(response.text).not.toContain(stack.functionKey);
  expectDocumented(method, template, response);
}

/**
 * The hub refuses the device's connection with the SDK error `name` (and not, say, because of its
 * TLS certificate). See docs/emulator-mqtt.md for the CONNACK codes.
 */
async function expectRefusedConnection(
  deviceConnectionString: string,
  name: 'UnauthorizedError' | 'ServiceUnavailableError',
): Promise<void> {
  const error: unknown = await connectDevice(deviceConnectionString, stack.caPem).then(
    async (connected) => {
      await connected.close();
      return undefined;
    },
    (refusal: unknown) => refusal,
  );
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).name).toBe(name);
  expect((error as Error).message).not.toMatch(/certificate/i);
}

/** A new device identity for one test: its connection string. */
async function createDevice(id: string): Promise<string> {
  const created = await api.post('/devices', { deviceId: id });
  expect(created.status).toBe(201);
  return String(asRecord(created.body).connectionString);
}

/** A new device identity for one test, connected over MQTT with the official SDK. */
async function connectNewDevice(id: string): Promise<TestDevice> {
  const device = await connectDevice(await createDevice(id), stack.caPem);
  connected.push(device);
  return device;
}

function tutorialReading(n: number, windSpeed: number, bodyDeviceId: string): Message {
  const message = new Message(JSON.stringify({ deviceId: bodyDeviceId, windSpeed }));
  message.messageId = `reading-${n}`;
  message.correlationId = `correlation_${n}`;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('Property', `PropMsg_${n}`);
  return message;
}

beforeAll(async () => {
  dataDir = createStackDataDir('e2e-tutorial-');
  stack = await startStackProcess(dataDir, {
    SIMULATOR_SCHEDULE: '*/2 * * * * *',
    SIMULATOR_DEVICE_COUNT: String(simulatorDevices.length),
    FEEDBACK_SCHEDULE: '*/2 * * * * *',
    FEEDBACK_DRAIN_SECONDS: '1',
    TELEMETRY_ALERT_THRESHOLD: '15',
  });
  api = new Api(stack.apiUrl, stack.functionKey);
  storage = stack.storageConnectionString;
  // Every test checks its responses against the document the stack serves.
  openApi = OpenApiChecker.fromJson((await api.get('/openapi.json', { key: null })).body);
}, 180_000);

afterAll(async () => {
  for (const device of connected.splice(0)) await device.close();
  const exitCode = await tearDownStack({ stack, dataDir });
  if (stack) expect(exitCode).toBe(0);
}, 90_000);

describe('the tutorial on the local stack', () => {
  it('is healthy and serves a valid OpenAPI document for every route', async () => {
    const document = await api.get('/openapi.json', { key: null });
    expect(document.status).toBe(200);
    expect(OpenApiChecker.fromJson(document.body).operations().sort()).toEqual(
      [...apiOperations].sort(),
    );

    const health = await api.get('/health', { key: null });
    expect(health.status).toBe(200);
    expect(health.body).toEqual({
      status: 'healthy',
      services: {
        iotHubRegistry: { status: 'up' },
        iotHubService: { status: 'up' },
        storage: { status: 'up' },
      },
    });
    expectDocumented('GET', '/health', health);
  });

  it('needs the function key the stack printed (header or ?code=)', async () => {
    expect(stack.functionKey).toMatch(/^\S{20,}$/);
    const missing = await api.get('/devices', { key: null });
    const wrong = await api.get('/devices', { key: `${stack.functionKey}x` });
    expect([missing.status, wrong.status]).toEqual([401, 401]);
    expectDocumented('GET', '/devices', missing);
    // The host refuses before the app runs. Azure's host sends no body; devhost says which key
    // is missing or wrong (problem+json), never the key itself.
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(missing.text).toMatch(/none was sent/);
    expect(wrong.text).toMatch(/x-functions-key header does not carry a valid one/);
    expect(missing.text + wrong.text).not.toContain(stack.functionKey);
    const anonymousCreate = await api.post(
      '/devices',
      { deviceId: 'no-key-device' },
      { key: null },
    );
    expect(anonymousCreate.status).toBe(401);

    // The key as the `code` query parameter (a 404 means the request got past the key check).
    const code = `code=${encodeURIComponent(stack.functionKey)}`;
    const byQuery = await api.get(`/devices/no-key-device?${code}`, { key: null });
    expect(byQuery.status).toBe(404);
    expect((await api.get(`/devices/sim-1/telemetry?${code}`, { key: null })).status).toBe(200);
    expect((await api.get('/devices/no-key-device')).status).toBe(404);
  });

  it('creates a device with keys and a connection string, and refuses every bad request', async () => {
    const created = await api.post('/devices', { deviceId });
    expect(created.status).toBe(201);
    expectDocumented('POST', '/devices', created);
    const identity = asRecord(created.body);
    expect(identity).toMatchObject({ deviceId, status: 'enabled' });
    expect(created.headers.get('location')).toBe(`/api/devices/${deviceId}`);
    expect(created.headers.get('cache-control')).toContain('no-store');
    const connectionString = String(identity.connectionString);
    expect(connectionString).toMatch(
      new RegExp(`^HostName=localhost:\\d+;DeviceId=${deviceId};SharedAccessKey=`),
    );
    expect(connectionString).toContain(`SharedAccessKey=${String(identity.primaryKey)}`);
    expect(identity.secondaryKey).toEqual(expect.any(String));
    expect(identity.secondaryKey).not.toBe(identity.primaryKey);

    const generated = await api.post('/devices');
    expect(generated.status).toBe(201);
    const generatedId = String(asRecord(generated.body).deviceId);
    expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await api.call('DELETE', `/devices/${generatedId}`)).status).toBe(204);

    // Creation: each refusal has its documented status and problem type.
    const post = (options: Parameters<Api['call']>[2]) => api.call('POST', '/devices', options);
    const json = { 'content-type': 'application/json' };
    expectProblem(
      'POST',
      '/devices',
      await post({ raw: '{"deviceId": "half', headers: json }),
      400,
      'invalid-json',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId: 'unknown-field-device', colour: 'red' } }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId: 'bad id!' } }),
      400,
      'invalid-device-id',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId: 'x'.repeat(129) } }),
      400,
      'invalid-device-id',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId: 'wrong-type-device', status: 7 } }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId: 'wrong-status-device', status: 'paused' } }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ raw: 'deviceId=form-device', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported-media-type',
    );
    expectProblem(
      'POST',
      '/devices',
      await post({ json: { deviceId, padding: 'x'.repeat(70 * 1024) } }),
      413,
      'payload-too-large',
    );
    const again = await post({ json: { deviceId } });
    expectProblem('POST', '/devices', again, 409, 'device-already-exists');

    // Reading, listing, updating and deleting what is not there or not valid.
    expectProblem(
      'GET',
      '/devices/{deviceId}',
      await api.get('/devices/no-such-device'),
      404,
      'device-not-found',
    );
    expectProblem(
      'GET',
      '/devices/{deviceId}',
      await api.get(`/devices/${encodeURIComponent('bad id!')}`),
      400,
      'invalid-device-id',
    );
    expectProblem(
      'GET',
      '/devices',
      await api.get('/devices?pageSize=0'),
      400,
      'validation-failed',
    );
    expectProblem(
      'GET',
      '/devices',
      await api.get('/devices?continuationToken=not-a-token-we-issued'),
      400,
      'invalid-continuation-token',
    );
    expectProblem(
      'PATCH',
      '/devices/{deviceId}',
      await api.call('PATCH', '/devices/no-such-device', { json: { status: 'disabled' } }),
      404,
      'device-not-found',
    );
    expectProblem(
      'PATCH',
      '/devices/{deviceId}',
      await api.call('PATCH', `/devices/${deviceId}`, { json: { status: false } }),
      400,
      'validation-failed',
    );
    expectProblem(
      'PATCH',
      '/devices/{deviceId}',
      await api.call('PATCH', `/devices/${deviceId}`, {
        json: { status: 'disabled', keys: 'new' },
      }),
      400,
      'validation-failed',
    );
    expectProblem(
      'DELETE',
      '/devices/{deviceId}',
      await api.call('DELETE', '/devices/no-such-device'),
      404,
      'device-not-found',
    );

    // Sending to a device: bad bodies, a body over 64 KB, an unknown device.
    const send = (id: string, body: unknown) => api.post(`/devices/${id}/messages`, body);
    const template = '/devices/{deviceId}/messages';
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 'x'.repeat(65 * 1024) }),
      413,
      'payload-too-large',
    );
    expectProblem('POST', template, await send(deviceId, {}), 400, 'validation-failed');
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 1, ack: 'sometimes' }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 1, ttlSeconds: 5 }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 1, ttlSeconds: '600' }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 1, messageId: 'not a valid id' }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      template,
      await send(deviceId, { payload: 1, properties: { 'iothub-ack': 'full' } }),
      400,
      'validation-failed',
    );
    expectProblem(
      'POST',
      template,
      await send('no-such-device', { payload: 1 }),
      404,
      'device-not-found',
    );
    expectProblem(
      'GET',
      '/devices/{deviceId}/messages/{messageId}',
      await api.get(`/devices/${deviceId}/messages/never-sent`),
      404,
      'message-not-found',
    );
    expectProblem(
      'GET',
      '/devices/{deviceId}/telemetry',
      await api.get(`/devices/${deviceId}/telemetry?limit=0`),
      400,
      'validation-failed',
    );
    expectProblem(
      'GET',
      '/devices/{deviceId}/telemetry',
      await api.get(
        `/devices/${deviceId}/telemetry?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`,
      ),
      400,
      'validation-failed',
    );

    // Nothing changed: no refused device exists, and nothing was queued for the (offline) device.
    const current = await api.get(`/devices/${deviceId}`);
    expect(current.status).toBe(200);
    expectDocumented('GET', '/devices/{deviceId}', current);
    expect(asRecord(current.body)).toMatchObject({
      deviceId,
      status: 'enabled',
      connectionState: 'Disconnected',
      cloudToDeviceMessageCount: 0,
    });
    expect(asRecord(current.body)).not.toHaveProperty('primaryKey');
    expect(current.headers.get('etag')).toBe(`"${String(asRecord(current.body).etag)}"`);
    for (const id of refusedIds) {
      expect((await api.get(`/devices/${id}`)).status).toBe(404);
    }
    const list = await api.get('/devices?pageSize=1000');
    expect(list.status).toBe(200);
    expectDocumented('GET', '/devices', list);
    const ids = (asRecord(list.body).items as { deviceId: string }[]).map((d) => d.deviceId);
    expect(ids).toContain(deviceId);
    expect(ids.filter((id) => refusedIds.includes(id))).toEqual([]);
  });

  it('connects with the returned connection string; readings appear newest first and bad messages are dead-lettered', async () => {
    const readerId = 'tutorial-reader';
    const device = await connectNewDevice(readerId);
    const readings: [number, number][] = [
      [1, 12.5],
      [2, 17.25],
      [3, 13],
    ];
    for (const [n, windSpeed] of readings) {
      // The third body claims another device: the hub's device id must win.
      await device.client.sendEvent(
        tutorialReading(n, windSpeed, n === 3 ? 'spoofed-device' : readerId),
      );
    }
    const notJson = new Message('wind is strong today');
    notJson.messageId = 'malformed-text';
    await device.client.sendEvent(notJson);
    const noWindSpeed = new Message(JSON.stringify({ deviceId: readerId, temperature: 21 }));
    noWindSpeed.messageId = 'malformed-no-windspeed';
    noWindSpeed.contentType = 'application/json';
    noWindSpeed.contentEncoding = 'utf-8';
    await device.client.sendEvent(noWindSpeed);

    const telemetry = await waitFor(
      'three processed readings and the latest state',
      async () => {
        // The device's state row is written after its readings (it follows stored readings
        // only), so a read can see the readings a moment before `latest`.
        const read = await readTelemetry(api, readerId);
        return read.items.length >= readings.length && read.latest ? read : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const response = await api.get(`/devices/${readerId}/telemetry`);
    expectDocumented('GET', '/devices/{deviceId}/telemetry', response);

    expect(telemetry.items.map((i) => i.messageId)).toEqual([
      'reading-3',
      'reading-2',
      'reading-1',
    ]);
    expect(telemetry.items.map((i) => i.windSpeed)).toEqual([13, 17.25, 12.5]);
    for (const item of telemetry.items) {
      const n = item.messageId?.split('-')[1] ?? '';
      expect(item).toMatchObject({
        deviceId: readerId,
        correlationId: `correlation_${n}`,
        // `Property` arrives as `property`: @azure/functions camel-cases every trigger metadata
        // key, application property names included (the real Node worker does the same).
        properties: { property: `PropMsg_${n}` },
      });
    }
    const times = telemetry.items.map((i) => Date.parse(i.enqueuedTime));
    expect(times.every((t) => Number.isFinite(t))).toBe(true);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(telemetry.latest).toMatchObject({ messageId: 'reading-3', windSpeed: 13 });
    expect((await readTelemetry(api, 'spoofed-device')).items).toEqual([]);
    const limited = await readTelemetry(api, readerId, '?limit=2');
    expect(limited.items.map((i) => i.messageId)).toEqual(['reading-3', 'reading-2']);

    // Dead letters live in the stack's own Azurite (the API does not serve them).
    const letters = await waitFor(
      'two dead letters',
      async () => {
        const rows = await readTable(storage, 'deadletters', readerId);
        return rows.length >= 2 ? rows : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(letters.map((l) => l.messageId).sort()).toEqual([
      'malformed-no-windspeed',
      'malformed-text',
    ]);
    for (const letter of letters) {
      expect(letter).toMatchObject({ deviceId: readerId, reason: expect.any(String) });
      expect(String(letter.reason)).not.toBe('');
    }
    expect(letters.find((l) => l.messageId === 'malformed-text')?.bodyText).toBe(
      'wind is strong today',
    );
    // Only the reading above the threshold (15) raised an alert.
    const alerts = await readTable(storage, 'alerts', readerId);
    expect(alerts.map((a) => a.messageId)).toEqual(['reading-2']);

    const connected = await api.get(`/devices/${readerId}`);
    expect(asRecord(connected.body).connectionState).toBe('Connected');
  });

  it("shows the simulator's own telemetry through the same route", async () => {
    for (const simulated of simulatorDevices) {
      const read = await waitFor(
        `telemetry from ${simulated}`,
        async () => {
          const result = await readTelemetry(api, simulated);
          return result.items.length > 0 ? result : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      for (const item of read.items) {
        expect(item.deviceId).toBe(simulated);
        // The tutorial's formula: 10 + random·4 + 2.
        expect(item.windSpeed).toBeGreaterThanOrEqual(12);
        expect(item.windSpeed).toBeLessThanOrEqual(16);
        expect(item.messageId).toEqual(expect.any(String));
      }
    }
    const list = await api.get('/devices?pageSize=1000');
    const ids = (asRecord(list.body).items as { deviceId: string }[]).map((d) => d.deviceId);
    expect(ids).toEqual(expect.arrayContaining(simulatorDevices));
  });

  it('sends a C2D message with ack full: the device receives it and its status becomes delivered', async () => {
    const c2dId = 'tutorial-c2d';
    const live = await connectNewDevice(c2dId);
    const template = '/devices/{deviceId}/messages';
    const sent = await api.post(`/devices/${c2dId}/messages`, {
      payload: { command: 'blink' },
      ack: 'full',
      messageId: 'c2d-blink',
      correlationId: 'c2d-correlation',
      properties: { priority: 'high' },
    });
    expect(sent.status).toBe(202);
    expectDocumented('POST', template, sent);
    expect(sent.body).toEqual({
      messageId: 'c2d-blink',
      status: 'enqueued',
      statusUrl: expect.stringContaining(`/devices/${c2dId}/messages/c2d-blink`),
    });
    expect(sent.headers.get('location')).toBe(String(asRecord(sent.body).statusUrl));

    // A second message waits for its outcome in the request (?wait=): 200 with it, or 202 if the
    // hub's feedback batch had not closed in time.
    const waited = api.post(`/devices/${c2dId}/messages?wait=55`, {
      payload: 'hello',
      ack: 'positive',
      messageId: 'c2d-hello',
    });

    const received = await waitFor('the C2D message at the device', () =>
      live.received.find((m) => m.messageId === 'c2d-blink'),
    );
    expect(JSON.parse(messageText(received))).toEqual({ command: 'blink' });
    expect(received.correlationId).toBe('c2d-correlation');
    expect(received.properties.getValue('priority')).toBe('high');

    const statusPath = `/devices/${c2dId}/messages/c2d-blink`;
    const delivered = await waitFor(
      'the delivered status',
      async () => {
        const response = await api.get(statusPath);
        return asRecord(response.body).status === 'delivered' ? response : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expectDocumented('GET', '/devices/{deviceId}/messages/{messageId}', delivered);
    expect(delivered.body).toMatchObject({ messageId: 'c2d-blink', deviceId: c2dId, ack: 'full' });

    const hello = await waited;
    expectDocumented('POST', template, hello);
    expect([200, 202]).toContain(hello.status);
    const helloStatus = await waitFor(
      'the delivered status of the waited-for message',
      async () => {
        const response = await api.get(`/devices/${c2dId}/messages/c2d-hello`);
        return asRecord(response.body).status === 'delivered' ? response.body : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    if (hello.status === 200) expect(hello.body).toEqual(helloStatus);
    const texts = live.received.map(messageText);
    expect(texts.filter((t) => t === 'hello')).toHaveLength(1);
    expect(live.received).toHaveLength(2);
  });

  it('disables the device with its etag (a stale etag changes nothing) and deletes it', async () => {
    const lifecycleId = 'tutorial-lifecycle';
    const connectionString = await createDevice(lifecycleId);
    const template = '/devices/{deviceId}';
    const before = await api.get(`/devices/${lifecycleId}`);
    const etag = before.headers.get('etag') ?? '';
    expect(etag).not.toBe('');

    expectProblem(
      'PATCH',
      template,
      await api.call('PATCH', `/devices/${lifecycleId}`, {
        json: { status: 'disabled' },
        headers: { 'if-match': '"an-older-etag"' },
      }),
      412,
      'precondition-failed',
    );
    const unchanged = await api.get(`/devices/${lifecycleId}`);
    expect(asRecord(unchanged.body).status).toBe('enabled');
    expect(unchanged.headers.get('etag')).toBe(etag);

    const disabled = await api.call('PATCH', `/devices/${lifecycleId}`, {
      json: { status: 'disabled', statusReason: 'end of the tutorial' },
      headers: { 'if-match': etag },
    });
    expect(disabled.status).toBe(200);
    expectDocumented('PATCH', template, disabled);
    expect(disabled.body).toMatchObject({
      deviceId: lifecycleId,
      status: 'disabled',
      statusReason: 'end of the tutorial',
    });
    expect(disabled.headers.get('etag')).not.toBe(etag);
    // A disabled device cannot connect, even with its (kept) key: CONNACK 3, server unavailable.
    await expectRefusedConnection(connectionString, 'ServiceUnavailableError');

    const deleted = await api.call('DELETE', `/devices/${lifecycleId}`);
    expect(deleted.status).toBe(204);
    expectDocumented('DELETE', template, deleted);
    expectProblem(
      'GET',
      template,
      await api.get(`/devices/${lifecycleId}`),
      404,
      'device-not-found',
    );
    expectProblem(
      'DELETE',
      template,
      await api.call('DELETE', `/devices/${lifecycleId}`),
      404,
      'device-not-found',
    );
    // A deleted device is unknown: CONNACK 5, not authorized.
    await expectRefusedConnection(connectionString, 'UnauthorizedError');
  });
});
