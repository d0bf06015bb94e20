/**
 * The local stack keeps its state across a restart: stop it (SIGTERM → exit 0) and start it
 * again on the same data folder; devices, readings, dead letters and message statuses are still
 * there, a message queued while the device was offline is delivered afterwards, a message
 * delivered before is not delivered again, and the telemetry trigger resumes after its checkpoint
 * instead of reprocessing stored events.
 *
 * How reprocessing would show: every telemetry write is an upsert (a replay writes identical
 * rows), but Table storage gives every write a new etag, so replayed rows would change their
 * etags. After the restart one more reading is sent from the same device (so to the same
 * partition); once it is stored, everything before it on that partition has been seen by the
 * trigger, and the old rows must still carry their old etags.
 *
 * The simulator is off so that only this test's device sends telemetry.
 *
 * The runs are phases of one scenario, so each is a fixture that runs once, on first need
 * (`firstRun`, `secondRun`, `deviceBackAfterRestart`): each test awaits the phases it needs, so
 * any test runs alone (`-t`) or in any order.
 */
import { Message } from 'azure-iot-device';
import type { StackProcess, StoredEntity, TestDevice } from './support';
import {
  Api,
  asRecord,
  connectDevice,
  createStackDataDir,
  messageText,
  readTable,
  readTelemetry,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';

// A test run alone also runs the phases before it (each at most about two minutes).
jest.setTimeout(300_000);

const deviceId = 'restart-device';
const settings = {
  SIMULATOR_ENABLED: 'false',
  FEEDBACK_SCHEDULE: '*/2 * * * * *',
  FEEDBACK_DRAIN_SECONDS: '1',
  TELEMETRY_ALERT_THRESHOLD: '15',
};

let dataDir: string;
let stack: StackProcess | undefined;
let device: TestDevice | undefined;

/** What the first run leaves behind, compared after the restart. */
const before = {
  functionKey: '',
  connectionString: '',
  readings: [] as unknown[],
  rows: new Map<string, Map<string, string>>(),
};

function reading(n: number, windSpeed: number): Message {
  const message = new Message(JSON.stringify({ deviceId, windSpeed }));
  message.messageId = `restart-reading-${n}`;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  return message;
}

/** `partitionKey|rowKey` → etag for every row of the app's event-derived tables. */
async function snapshot(storage: string): Promise<Map<string, Map<string, string>>> {
  const tables = new Map<string, Map<string, string>>();
  for (const table of ['telemetry', 'alerts', 'deadletters']) {
    const rows: StoredEntity[] = await readTable(storage, table);
    tables.set(table, new Map(rows.map((r) => [`${r.partitionKey}|${r.rowKey}`, r.etag])));
  }
  return tables;
}

async function statusOf(api: Api, messageId: string): Promise<unknown> {
  const response = await api.get(`/devices/${deviceId}/messages/${messageId}`);
  return asRecord(response.body).status;
}

async function waitForStatus(api: Api, messageId: string, status: string): Promise<void> {
  await waitFor(
    `${messageId} to become ${status}`,
    async () => ((await statusOf(api, messageId)) === status ? true : undefined),
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}

beforeAll(() => {
  dataDir = createStackDataDir('e2e-restart-');
});

afterAll(async () => {
  const running = stack;
  const exitCode = await tearDownStack({ device, stack, dataDir });
  // The second run stops cleanly too (SIGTERM → exit 0).
  if (running) expect(exitCode).toBe(0);
}, 90_000);

/**
 * The first run: a device, readings, a dead letter, one delivered and one queued message; then a
 * clean stop. Records what it left behind in `before`.
 */
async function runFirst(): Promise<void> {
  stack = await startStackProcess(dataDir, settings);
  const api = new Api(stack.apiUrl, stack.functionKey);
  const created = await api.post('/devices', { deviceId });
  expect(created.status).toBe(201);
  before.functionKey = stack.functionKey;
  before.connectionString = String(asRecord(created.body).connectionString);

  device = await connectDevice(before.connectionString, stack.caPem);
  const speeds = [12, 16.5, 13.25, 14];
  for (const [i, speed] of speeds.entries()) await device.client.sendEvent(reading(i + 1, speed));
  const malformed = new Message('{"windSpeed": "fast"}');
  malformed.messageId = 'restart-malformed';
  await device.client.sendEvent(malformed);

  const sent = await api.post(`/devices/${deviceId}/messages`, {
    payload: { command: 'before-restart' },
    ack: 'full',
    messageId: 'before-restart',
  });
  expect(sent.status).toBe(202);
  const live = device;
  await waitFor('before-restart at the device', () =>
    live.received.find((m) => m.messageId === 'before-restart'),
  );

  const storage = stack.storageConnectionString;
  await waitFor(
    'four readings and one dead letter',
    async () => {
      const read = await readTelemetry(api, deviceId);
      const letters = await readTable(storage, 'deadletters', deviceId);
      return read.items.length >= speeds.length && letters.length >= 1 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  await waitForStatus(api, 'before-restart', 'delivered');

  // Queued for an offline device: stays in the hub's queue across the restart.
  await device.close();
  device = undefined;
  const offline = await api.post(`/devices/${deviceId}/messages`, {
    payload: 'while-offline',
    ack: 'full',
    messageId: 'while-offline',
  });
  expect(offline.status).toBe(202);
  expect(await statusOf(api, 'while-offline')).toBe('enqueued');

  before.readings = (await readTelemetry(api, deviceId)).items;
  expect(before.readings).toHaveLength(speeds.length);
  before.rows = await snapshot(storage);
  expect(before.rows.get('telemetry')?.size).toBe(speeds.length);
  expect(before.rows.get('alerts')?.size).toBe(1);
  expect(before.rows.get('deadletters')?.size).toBe(1);

  expect(await stack.stop()).toBe(0);
  stack = undefined;
}

/** What the second run showed right after its start, before any device connected. */
interface SecondRunStart {
  stack: StackProcess;
  api: Api;
  functionKey: string;
  identity: { status: number; body: unknown };
  statuses: { beforeRestart: unknown; whileOffline: unknown };
  readings: unknown[];
}

async function runSecond(): Promise<SecondRunStart> {
  await firstRun();
  const running = await startStackProcess(dataDir, settings);
  stack = running;
  const api = new Api(running.apiUrl, running.functionKey);
  const identity = await api.get(`/devices/${deviceId}`);
  return {
    stack: running,
    api,
    functionKey: running.functionKey,
    identity: { status: identity.status, body: identity.body },
    statuses: {
      beforeRestart: await statusOf(api, 'before-restart'),
      whileOffline: await statusOf(api, 'while-offline'),
    },
    readings: (await readTelemetry(api, deviceId)).items,
  };
}

/**
 * The device back after the restart: connected with its old key to the hub's new port, the
 * message queued while it was offline received, and one more reading sent.
 */
async function runDeviceBack(): Promise<TestDevice> {
  const { stack: running } = await secondRun();
  // The hub listens on a new ephemeral port; the device's identity and key are the same.
  const hostName = /HostName=([^;]+)/.exec(running.serviceConnectionString)?.[1] ?? '';
  const live = await connectDevice(
    before.connectionString.replace(/HostName=[^;]+/, `HostName=${hostName}`),
    running.caPem,
  );
  device = live;
  await waitFor('while-offline at the device', () =>
    live.received.find((m) => m.messageId === 'while-offline'),
  );
  await live.client.sendEvent(reading(5, 12.75));
  return live;
}

let first: Promise<void> | undefined;
let second: Promise<SecondRunStart> | undefined;
let back: Promise<TestDevice> | undefined;
const firstRun = () => (first ??= runFirst());
const secondRun = () => (second ??= runSecond());
const deviceBackAfterRestart = () => (back ??= runDeviceBack());

describe('restarting the local stack on the same data folder', () => {
  it('first run: a device, readings, a dead letter, one delivered and one queued message', async () => {
    await firstRun();
    expect(before.readings).toHaveLength(4);
    expect(before.rows.get('deadletters')?.size).toBe(1);
  });

  it('second run: the same state, the same key, and the queued message is delivered once', async () => {
    const start = await secondRun();
    expect(start.functionKey).toBe(before.functionKey);
    expect(start.identity.status).toBe(200);
    expect(start.identity.body).toMatchObject({
      deviceId,
      status: 'enabled',
      cloudToDeviceMessageCount: 1,
    });
    expect(start.statuses).toEqual({ beforeRestart: 'delivered', whileOffline: 'enqueued' });
    expect(start.readings).toEqual(before.readings);

    const live = await deviceBackAfterRestart();
    await waitForStatus(start.api, 'while-offline', 'delivered');
    // before-restart was completed before the restart: the hub does not deliver it again.
    expect(live.received.map((m) => m.messageId)).toEqual(['while-offline']);
    expect(messageText(live.received[0]!)).toBe('while-offline');
  });

  it('second run: the trigger resumes after its checkpoint instead of reprocessing', async () => {
    await deviceBackAfterRestart();
    const { stack: running, api } = await secondRun();
    const read = await waitFor(
      'the reading sent after the restart',
      async () => {
        const result = await readTelemetry(api, deviceId);
        return result.items[0]?.messageId === 'restart-reading-5' ? result : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(read.items.map((i) => i.messageId)).toEqual([
      'restart-reading-5',
      'restart-reading-4',
      'restart-reading-3',
      'restart-reading-2',
      'restart-reading-1',
    ]);
    // Same device, same partition: the new reading is behind every old event in the stream.
    expect(new Set(read.items.map((i) => i.partition)).size).toBe(1);

    const after = await snapshot(running.storageConnectionString);
    const telemetryBefore = before.rows.get('telemetry') ?? new Map<string, string>();
    const telemetryAfter = after.get('telemetry') ?? new Map<string, string>();
    expect(telemetryAfter.size).toBe(telemetryBefore.size + 1);
    for (const [key, etag] of telemetryBefore) expect(telemetryAfter.get(key)).toBe(etag);
    expect(after.get('alerts')).toEqual(before.rows.get('alerts'));
    expect(after.get('deadletters')).toEqual(before.rows.get('deadletters'));
  });
});
