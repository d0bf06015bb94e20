/**
 * One poison reading must never block a partition, on the whole local stack: two devices whose
 * ids hash to the same Event Hub partition send good readings around poison ones (a
 * 40,000-character content type, a 40,000-character application property) with the official
 * device SDK over MQTT. Every good reading lands in Azurite, the poison ones in `deadletters`
 * with a reason naming the field, the trigger never fails (so nothing is retried), and health
 * stays healthy.
 *
 * Needs `npm run build` (the stack runs from `dist/`).
 */
import { Message } from 'azure-iot-device';
import { stableHash } from '@iot-hub-functions/local-iothub';
import { TableNames } from '../../lib/storage/tables';
import type { StackProcess, StoredEntity, TestDevice } from './support';
import {
  Api,
  asRecord,
  connectDevice,
  createStackDataDir,
  readTable,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';

jest.setTimeout(180_000);

/** The local hub's default partition count (`emulator/core/create-core.ts`). */
const hubPartitions = 4;

/** Two device ids that the hub puts on the same partition (FNV-1a of the id, modulo 4). */
function devicesOnOnePartition(): [string, string] {
  const first = 'poison-a';
  const target = stableHash(first) % hubPartitions;
  for (let i = 0; i < 1000; i += 1) {
    const candidate = `poison-b${i}`;
    if (stableHash(candidate) % hubPartitions === target) return [first, candidate];
  }
  throw new Error('no second device id on the same partition');
}

const [deviceA, deviceB] = devicesOnOnePartition();

let dataDir: string | undefined;
let stack: StackProcess | undefined;
const devices: TestDevice[] = [];

function reading(id: string, windSpeed: number): Message {
  const message = new Message(JSON.stringify({ windSpeed }));
  message.messageId = id;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  return message;
}

async function connect(api: Api, deviceId: string): Promise<TestDevice> {
  const created = await api.post('/devices', { deviceId });
  expect(created.status).toBe(201);
  const device = await connectDevice(String(asRecord(created.body).connectionString), stack?.caPem);
  devices.push(device);
  return device;
}

function byMessageId(rows: readonly StoredEntity[]): Map<string, StoredEntity> {
  return new Map(rows.map((row) => [String(row.messageId), row]));
}

beforeAll(async () => {
  dataDir = createStackDataDir('e2e-poison-');
  stack = await startStackProcess(dataDir, { SIMULATOR_ENABLED: 'false' });
}, 180_000);

afterAll(async () => {
  for (const device of devices) await device.close();
  const exitCode = await tearDownStack({ stack, dataDir });
  if (stack) expect(exitCode).toBe(0);
}, 90_000);

describe('poison readings on the local stack', () => {
  it('stores every good reading of the partition and dead-letters the poison ones', async () => {
    if (!stack) throw new Error('the stack did not start');
    const api = new Api(stack.apiUrl, stack.functionKey);
    const storage = stack.storageConnectionString;
    const a = await connect(api, deviceA);
    const b = await connect(api, deviceB);

    const poisonType = reading('a-poison', 5);
    // The SDK types `contentType` as 'application/json' only; the wire takes any text.
    const longType = `application/json;${'x'.repeat(40_000 - 17)}`;
    expect(longType).toHaveLength(40_000);
    Object.assign(poisonType, { contentType: longType });
    const poisonProperty = reading('b-poison', 6);
    poisonProperty.properties.add('big', 'v'.repeat(40_000));
    // Good, poison, good for each device, interleaved on the one partition.
    await a.client.sendEvent(reading('a-1', 1));
    await b.client.sendEvent(reading('b-1', 2));
    await a.client.sendEvent(poisonType);
    await b.client.sendEvent(poisonProperty);
    await a.client.sendEvent(reading('a-2', 3));
    await b.client.sendEvent(reading('b-2', 4));

    const good = ['a-1', 'a-2', 'b-1', 'b-2'];
    const stored = await waitFor(
      'every good reading to be stored',
      async () => {
        const rows = byMessageId(await readTable(storage, TableNames.telemetry));
        return good.every((id) => rows.has(id)) ? rows : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect([...stored.keys()].sort()).toEqual(good);
    // The premise: both devices' readings went through the same Event Hub partition.
    expect(new Set([...stored.values()].map((row) => row.partition)).size).toBe(1);

    const letters = await waitFor('both poison readings to be dead-lettered', async () => {
      const rows = byMessageId(await readTable(storage, TableNames.deadLetters));
      return rows.size >= 2 ? rows : undefined;
    });
    expect([...letters.keys()].sort()).toEqual(['a-poison', 'b-poison']);
    expect(letters.get('a-poison')).toMatchObject({
      deviceId: deviceA,
      reason: 'field-too-large',
      partition: stored.get('a-1')?.partition,
    });
    expect(String(letters.get('a-poison')?.detail)).toMatch(/^contentType is 40000 characters/);
    expect(String(letters.get('a-poison')?.contentType)).toHaveLength(256);
    expect(letters.get('b-poison')).toMatchObject({ deviceId: deviceB, reason: 'field-too-large' });
    expect(String(letters.get('b-poison')?.detail)).toMatch(/^property "big" is 40000 characters/);

    // Nothing failed, so nothing is being retried, and health says so.
    const lines = stack.lines().join('\n');
    expect(lines).not.toContain('telemetry batch not stored');
    expect(lines).toMatch(/deadLettered=\d+ \(field-too-large:\d\)/);
    const health = await api.get('/health', { key: null });
    expect(health.status).toBe(200);
    expect(asRecord(health.body).status).toBe('healthy');
  });
});
