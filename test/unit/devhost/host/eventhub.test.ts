/**
 * devhost's Event Hub trigger end to end: real devices send telemetry over MQTT to the local IoT
 * Hub, devhost (a child process) receives it through `@azure/event-hubs` and keeps checkpoints in
 * Azurite. Needs `npm run build` and the test CA (`npm test` arranges both).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ContainerClient } from '@azure/storage-blob';
import { Message, type Client as DeviceClient } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { createRegistry } from '../../../../lib/iothub/registry-agent';
import type { AzuriteInstance } from '../../../support/azurite';
import { startAzurite } from '../../../support/azurite';
import type { EmulatorInstance } from '../../../support/emulator';
import { startEmulator } from '../../../support/emulator';
import { until, type Probe } from '../../../support/wait';
import { mqttDeviceClient, registerDevice } from '../../../support/devices';
import { readJsonLines, startNode, type NodeChild } from '../../../support/processes';

const root = resolve(__dirname, '..', '..', '..', '..');
const cli = join(root, 'dist', 'devhost', 'host', 'cli.js');
const fixture = join(root, 'test', 'fixtures', 'devhost-app');

let emulator: EmulatorInstance;
let azurite: AzuriteInstance;
let registry: Registry;
let device: DeviceClient;
let deviceId: string;
let out: string;
const cleanup: (() => Promise<unknown>)[] = [];

/** Polls for up to 30 s, every 100 ms: longer and sparser than `until`'s defaults. */
const waitFor = <T>(what: string, probe: Probe<T>): Promise<T> => until(what, probe, 30_000, 100);

async function startDevhost(
  dataDir: string,
  enabled: string,
  env: Record<string, string> = {},
): Promise<NodeChild> {
  const started = startNode(cli, ['--app', fixture, '--port', '0', '--data', dataDir], {
    env: {
      ...process.env,
      FIXTURE_OUT_DIR: out,
      FIXTURE_EVENTS_CONNECTION: emulator.connection.eventsConnectionString,
      FIXTURE_EVENTS_NAME: emulator.connection.eventsName,
      FIXTURE_CONSUMER_GROUP: '$Default',
      AzureWebJobsStorage: azurite.connectionString,
      [`AzureWebJobs.${enabled}.Disabled`]: 'false',
      ...env,
    },
  });
  const child = started.process;
  cleanup.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await started.exited;
  });
  await waitFor('devhost start', () => {
    if (child.exitCode !== null) throw new Error(`devhost exited early:\n${started.output()}`);
    return /Host started/.test(started.output()) ? true : undefined;
  });
  return started;
}

async function send(id: string, body: string, alert: string): Promise<void> {
  const message = new Message(body);
  message.messageId = id;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('Alert', alert);
  await device.sendEvent(message);
}

async function checkpointBlobs(consumerGroup: string): Promise<string[]> {
  const container = new ContainerClient(azurite.connectionString, 'azure-webjobs-eventhub');
  const names: string[] = [];
  if (!(await container.exists())) return names;
  for await (const blob of container.listBlobsFlat()) {
    if (blob.name.includes(`/${consumerGroup.toLowerCase()}/checkpoint/`)) names.push(blob.name);
  }
  return names;
}

beforeAll(async () => {
  [emulator, azurite] = await Promise.all([
    startEmulator({
      inMemory: true,
      partitions: 2,
      args: ['--consumer-group', 'retries', '--consumer-group', 'exhausted'],
    }),
    startAzurite(),
  ]);
  out = mkdtempSync(join(tmpdir(), 'devhost-eh-out-'));
  registry = createRegistry(emulator.connection.serviceConnectionString);
  deviceId = 'devhost-eh-device';
  const { key } = await registerDevice(registry, deviceId);
  device = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  await device.open();
});

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  await device?.close().catch(() => undefined);
  await Promise.allSettled([emulator?.stop(), azurite?.stop()]);
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('devhost Event Hub trigger', () => {
  it('delivers batches with the host metadata, checkpoints, and does not reprocess after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-eh-'));
    cleanup.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    const file = join(out, 'telemetry.jsonl');
    const first = await startDevhost(dataDir, 'telemetry');
    for (let i = 0; i < 3; i += 1)
      await send(
        `m-${i}`,
        JSON.stringify({ deviceId, windSpeed: 10 + i }),
        i === 1 ? 'high' : 'none',
      );

    const batches = await waitFor('three events', () => {
      const lines = readJsonLines(file);
      return lines.flatMap((l) => l.messages as unknown[]).length >= 3 ? lines : undefined;
    });
    const messages = batches.flatMap((b) => b.messages as Record<string, unknown>[]);
    expect(messages.map((m) => m.windSpeed).sort()).toEqual([10, 11, 12]);
    const batch = batches[0]!;
    const meta = batch.triggerMetadata as Record<string, unknown>;
    const system = meta.systemPropertiesArray as Record<string, unknown>[];
    const count = (batch.messages as unknown[]).length;
    expect(system).toHaveLength(count);
    expect(meta.propertiesArray).toHaveLength(count);
    expect(meta.sequenceNumberArray).toHaveLength(count);
    expect(meta.enqueuedTimeUtcArray).toHaveLength(count);
    expect(system[0]).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-message-source': 'Telemetry',
      'x-opt-sequence-number': expect.any(Number),
      'x-opt-offset': expect.any(String),
      'message-id': expect.stringMatching(/^m-\d$/),
      'content-type': 'application/json',
      sequenceNumber: expect.any(Number),
      enqueuedTimeUtc: expect.any(String),
    });
    expect((meta.propertiesArray as Record<string, unknown>[])[0]).toHaveProperty('alert');
    expect(meta.partitionContext).toMatchObject({
      eventHubName: emulator.connection.eventsName,
      consumerGroup: '$Default',
      partitionId: expect.any(String),
    });
    // The handler writes its file before the host logs the invocation's end: wait for the line.
    await waitFor('the Executed line', () =>
      /Executed 'telemetry' \(Succeeded, Id=[0-9a-f-]{36}, Duration=/.test(first.output())
        ? true
        : undefined,
    );

    await waitFor('checkpoints', async () =>
      (await checkpointBlobs('$Default')).length > 0 ? true : undefined,
    );
    first.process.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await startDevhost(dataDir, 'telemetry');
    await send('m-after-restart', JSON.stringify({ deviceId, windSpeed: 99 }), 'none');
    await waitFor('the new event', () =>
      readJsonLines(file).some((l) =>
        (l.messages as Record<string, unknown>[]).some((m) => m.windSpeed === 99),
      )
        ? true
        : undefined,
    );
    const all = readJsonLines(file).flatMap((l) => l.messages as Record<string, unknown>[]);
    expect(all.map((m) => m.windSpeed).sort()).toEqual([10, 11, 12, 99]);
    second.process.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('retries a failing batch with retryContext, and checkpoints once retries are exhausted', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-eh-'));
    cleanup.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    const file = join(out, 'retry.jsonl');
    rmSync(file, { force: true });
    const host = await startDevhost(dataDir, 'telemetryRetry', {
      FIXTURE_CONSUMER_GROUP: 'retries',
      FIXTURE_RETRY_FAILURES: '2',
    });
    const lines = await waitFor('three attempts', () => {
      const found = readJsonLines(file);
      return found.length >= 3 ? found : undefined;
    });
    expect(lines.slice(0, 3).map((l) => l.retryContext)).toEqual([
      { retryCount: 0, maxRetryCount: 3 },
      {
        retryCount: 1,
        maxRetryCount: 3,
        exception: expect.objectContaining({ message: 'transient failure' }),
      },
      {
        retryCount: 2,
        maxRetryCount: 3,
        exception: expect.objectContaining({ message: 'transient failure' }),
      },
    ]);
    expect(lines[0]!.count).toBe(lines[2]!.count);
    host.process.kill('SIGTERM');
    expect(await host.exited).toBe(0);

    rmSync(file, { force: true });
    const exhausted = await startDevhost(dataDir, 'telemetryRetry', {
      FIXTURE_CONSUMER_GROUP: 'exhausted',
      FIXTURE_RETRY_FAILURES: '1000',
    });
    await waitFor('retries exhausted', () =>
      /retries exhausted; checkpointing past the failed batch/.test(exhausted.output())
        ? true
        : undefined,
    );
    const attempts = readJsonLines(file).map(
      (l) => (l.retryContext as { retryCount: number }).retryCount,
    );
    expect(attempts.slice(0, 4)).toEqual([0, 1, 2, 3]);
    await waitFor('checkpoint after exhausted retries', async () =>
      (await checkpointBlobs('exhausted')).length > 0 ? true : undefined,
    );
    exhausted.process.kill('SIGTERM');
    expect(await exhausted.exited).toBe(0);
  });
});
