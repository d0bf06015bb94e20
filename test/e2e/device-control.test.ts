/**
 * Controlling a simulated device end to end on the whole local stack, as curl would: the
 * simulator (timer every second, one device) reports its interval in its twin; a desired
 * `telemetryIntervalSeconds` written through `PATCH /devices/{id}/twin` and the direct method
 * `SetTelemetryInterval` through `POST /devices/{id}/methods/{name}` each change how often it
 * sends, which shows in the enqueue times of the readings stored through the telemetry route.
 * Each test sets up the state it needs: the connect report is read from a device no test changes,
 * and the test that speeds a device up slows it down first.
 */
import type { ApiResponse, StackProcess, TelemetryItem } from './support';
import {
  Api,
  asRecord,
  createStackDataDir,
  OpenApiChecker,
  readTelemetry,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';

jest.setTimeout(150_000);

/** Never changed by a test: its twin keeps the report it made on connect. */
const untouched = 'sim-1';
/** The device the tests change. */
const controlled = 'sim-2';

let dataDir: string;
let stack: StackProcess;
let api: Api;
let openApi: OpenApiChecker;

interface Ack {
  value: number;
  ac: number;
  av: number;
}

interface ApiTwin {
  etag: string;
  desired: { version: number };
  reported: { properties: Record<string, unknown> };
}

function expectDocumented(method: string, template: string, response: ApiResponse): void {
  expect(openApi.check(method, template, response)).toEqual([]);
}

async function twin(deviceId = controlled): Promise<ApiTwin> {
  const response = await api.get(`/devices/${deviceId}/twin`);
  if (response.status !== 200) throw new Error(`twin read: HTTP ${response.status}`);
  expectDocumented('GET', '/devices/{deviceId}/twin', response);
  return response.body as ApiTwin;
}

function intervalAck(read: ApiTwin): Ack | undefined {
  return read.reported.properties.telemetryIntervalSeconds as Ack | undefined;
}

/** Seconds between consecutive readings enqueued after `since`, oldest first. */
async function gapsSince(since: number, count: number, deviceId = controlled): Promise<number[]> {
  const items = await waitFor(
    `${count + 1} readings after the change`,
    async () => {
      const { items: all } = await readTelemetry(api, deviceId, '?limit=200');
      const after = all.filter((item: TelemetryItem) => Date.parse(item.enqueuedTime) > since);
      return after.length > count ? after : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const times = items.map((item) => Date.parse(item.enqueuedTime)).sort((a, b) => a - b);
  return times.slice(1).map((t, i) => (t - (times[i] ?? t)) / 1000);
}

beforeAll(async () => {
  dataDir = createStackDataDir('e2e-control-');
  stack = await startStackProcess(dataDir, {
    SIMULATOR_SCHEDULE: '* * * * * *',
    SIMULATOR_DEVICE_COUNT: '2',
  });
  api = new Api(stack.apiUrl, stack.functionKey);
  openApi = OpenApiChecker.fromJson((await api.get('/openapi.json', { key: null })).body);
  // Both devices are connected and listening once each has made its connect report.
  for (const deviceId of [untouched, controlled]) {
    await waitFor(`${deviceId}'s connect report`, async () => intervalAck(await twin(deviceId)));
  }
}, 180_000);

afterAll(async () => {
  const exitCode = await tearDownStack({ stack, dataDir });
  if (stack) expect(exitCode).toBe(0);
}, 90_000);

describe('controlling a simulated device through the API', () => {
  it('shows the interval the device reported on connect (the 1 s tick, as its default), and keeps it', async () => {
    const read = await waitFor('the connect report', async () => {
      const current = await twin(untouched);
      return intervalAck(current) ? current : undefined;
    });
    expect(intervalAck(read)).toMatchObject({ value: 1, ac: 203, av: 0 });
    expect(read.reported.properties.firmwareVersion).toBe('1.0.0');
    // The baseline the changes below are measured against: a reading about every second.
    for (const gap of await gapsSince(Date.now(), 3, untouched)) expect(gap).toBeLessThan(2.5);
  });

  it('slows the device to one reading every 4 s through a desired property', async () => {
    const before = await twin();
    const response = await api.call('PATCH', `/devices/${controlled}/twin`, {
      json: { desired: { telemetryIntervalSeconds: 4 } },
      headers: { 'if-match': `"${before.etag}"` },
    });
    expect(response.status).toBe(200);
    expectDocumented('PATCH', '/devices/{deviceId}/twin', response);
    const version = (response.body as ApiTwin).desired.version;
    await waitFor('the acknowledgement', async () => {
      const ack = intervalAck(await twin());
      return ack?.av === version ? ack : undefined;
    });
    const acknowledged = Date.now();
    expect(intervalAck(await twin())).toMatchObject({ value: 4, ac: 200, av: version });

    const gaps = await gapsSince(acknowledged, 3);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(3);
      expect(gap).toBeLessThan(6.5);
    }
  });

  it('speeds it up to one reading a second through SetTelemetryInterval, and refuses a bad value', async () => {
    const slowed = await api.post(`/devices/${controlled}/methods/SetTelemetryInterval`, {
      payload: 4,
      responseTimeoutInSeconds: 10,
    });
    expect(slowed.body).toEqual({ status: 200, payload: { telemetryIntervalSeconds: 4 } });
    const bad = await api.post(`/devices/${controlled}/methods/SetTelemetryInterval`, {
      payload: 0,
      responseTimeoutInSeconds: 10,
    });
    expect(bad.status).toBe(200);
    expect(asRecord(bad.body).status).toBe(400);
    expectDocumented('POST', '/devices/{deviceId}/methods/{methodName}', bad);

    const response = await api.post(`/devices/${controlled}/methods/SetTelemetryInterval`, {
      payload: 1,
      responseTimeoutInSeconds: 10,
    });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 200, payload: { telemetryIntervalSeconds: 1 } });
    const answered = Date.now();
    // The device sends on its old 4 s schedule once more at most, then every second.
    const gaps = await gapsSince(answered + 4_000, 5);
    for (const gap of gaps) expect(gap).toBeLessThan(2.5);
    const ack = await waitFor('the reported interval', async () => {
      const current = intervalAck(await twin());
      return current?.value === 1 ? current : undefined;
    });
    expect(ack.ac).toBe(200);
  });

  it('gets 404 from the device for a method it does not have', async () => {
    const response = await api.post(`/devices/${controlled}/methods/Reboot`, {
      responseTimeoutInSeconds: 10,
    });
    expect(response.status).toBe(200);
    expect(asRecord(response.body).status).toBe(404);
  });
});
