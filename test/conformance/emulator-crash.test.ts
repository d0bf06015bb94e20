/**
 * Nothing acknowledged is lost: the durable emulator is killed with SIGKILL while several MQTT
 * devices stream telemetry, restarted on the same data folder, and everything it had PUBACKed is
 * read back from the earliest position through `@azure/event-hubs`. Devices (with their keys) and
 * C2D messages queued for an offline device survive too.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EventHubConsumerClient,
  earliestEventPosition,
  type PartitionContext,
  type ReceivedEventData,
} from '@azure/event-hubs';
import type { Message as CommonMessage } from 'azure-iot-common';
import type { Client as DeviceClient } from 'azure-iot-device';
import { Message } from 'azure-iot-device';
import { Client as ServiceClient } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { deviceIdOf } from '../support/events';
import { mqttDeviceClient, registerDevice, type TestDevice } from '../support/devices';
import { until, type Probe } from '../support/wait';

const STREAMING_DEVICES = 4;
/** Sends each device keeps in flight, so the emulator's group commit has company. */
const IN_FLIGHT_PER_DEVICE = 8;
/** Acknowledged messages to wait for before pulling the plug. */
const ACKED_BEFORE_KILL = 400;
const OFFLINE_DEVICE = 'crash-offline';

const dataDirs: string[] = [];
const emulators: EmulatorInstance[] = [];
const clients: DeviceClient[] = [];

/** Waits here allow 30 s rather than the shared default. */
const eventually = <T>(what: string, probe: Probe<T>, timeoutMs = 30_000): Promise<T> =>
  until(what, probe, timeoutMs);

function deviceClient(emulator: EmulatorInstance, deviceId: string, key: string): DeviceClient {
  const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  clients.push(client);
  return client;
}

function text(data: unknown): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (data instanceof Uint8Array) return Buffer.from(data).toString('utf8');
  return typeof data === 'string' ? data : JSON.stringify(data);
}

/**
 * Streams telemetry until `stop()` is called or sends start failing (the process died); returns
 * the message ids whose send resolved, i.e. that the emulator PUBACKed.
 */
function stream(client: DeviceClient, deviceId: string) {
  const acked: string[] = [];
  let stopped = false;
  let sequence = 0;
  const sender = async (): Promise<void> => {
    while (!stopped) {
      const messageId = `${deviceId}-${sequence++}`;
      const message = new Message(JSON.stringify({ deviceId, messageId }));
      message.messageId = messageId;
      message.properties.add('stream', 'crash-test');
      try {
        await client.sendEvent(message);
        acked.push(messageId);
      } catch {
        stopped = true;
      }
    }
  };
  const done = Promise.all(Array.from({ length: IN_FLIGHT_PER_DEVICE }, sender));
  return {
    acked,
    stop: async (): Promise<void> => {
      stopped = true;
      await done;
    },
  };
}

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await Promise.allSettled(emulators.map((emulator) => emulator.stop('SIGKILL')));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** How the hub syncs telemetry: both modes must lose nothing to a kill of the hub process. */
const syncModes: [string, string[]][] = [
  ['written to the OS before each PUBACK, fdatasynced in the background (the default)', []],
  ['fdatasynced before each PUBACK (--d2c-sync-interval-ms 0)', ['--d2c-sync-interval-ms', '0']],
];

test.each(syncModes)(
  'after SIGKILL mid-stream every acknowledged message, device and queued C2D message is back; telemetry %s',
  async (_mode, args) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'local-iothub-crash-'));
    dataDirs.push(dataDir);
    // First life: devices, queued C2D for a device that never connects, then a telemetry stream.
    const first = await startEmulator({ dataDir, args });
    emulators.push(first);
    const registry = createRegistry(first.connection.serviceConnectionString);
    const devices: TestDevice[] = [];
    for (const deviceId of [
      ...Array.from({ length: STREAMING_DEVICES }, (_, i) => `crash-${i}`),
      OFFLINE_DEVICE,
    ]) {
      devices.push(await registerDevice(registry, deviceId));
    }
    const service = ServiceClient.fromConnectionString(first.connection.serviceConnectionString);
    await service.open();
    const queued = ['queued-1', 'queued-2', 'queued-3'];
    for (const messageId of queued) {
      const message = new Message(`body of ${messageId}`);
      message.messageId = messageId;
      await service.send(OFFLINE_DEVICE, message);
    }
    await service.close();

    const streaming = devices.filter((d) => d.deviceId !== OFFLINE_DEVICE);
    const streams = await Promise.all(
      streaming.map(async ({ deviceId, key }) => {
        const client = deviceClient(first, deviceId, key);
        await client.open();
        return stream(client, deviceId);
      }),
    );
    const ackedCount = (): number => streams.reduce((n, s) => n + s.acked.length, 0);
    await eventually('telemetry to flow', () =>
      ackedCount() >= ACKED_BEFORE_KILL ? true : undefined,
    );

    await first.stop('SIGKILL');
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
    // Anything still in flight now fails; only what resolved before counts as acknowledged.
    await Promise.all(streams.map((s) => s.stop()));
    const acknowledged = new Set(streams.flatMap((s) => s.acked));
    expect(acknowledged.size).toBeGreaterThanOrEqual(ACKED_BEFORE_KILL);
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));

    // Second life on the same folder.
    const second = await startEmulator({ dataDir, args });
    emulators.push(second);
    const registryAfter = createRegistry(second.connection.serviceConnectionString);
    for (const { deviceId, key } of devices) {
      const { responseBody } = await registryAfter.get(deviceId);
      expect(responseBody.authentication?.symmetricKey?.primaryKey).toBe(key);
    }

    const consumer = new EventHubConsumerClient(
      '$Default',
      second.connection.eventsConnectionString,
    );
    const seen = new Set<string>();
    const wrongDevice: unknown[] = [];
    /** `partition/sequence number` of every event read: each must be unique. */
    const positions: string[] = [];
    const lastSequence = new Map<string, number>();
    const subscription = consumer.subscribe(
      {
        processEvents: async (events: ReceivedEventData[], context: PartitionContext) => {
          for (const event of events) {
            const id = String(event.messageId);
            seen.add(id);
            positions.push(`${context.partitionId}/${event.sequenceNumber}`);
            lastSequence.set(
              context.partitionId,
              Math.max(lastSequence.get(context.partitionId) ?? -1, event.sequenceNumber),
            );
            if (!id.startsWith(`${String(deviceIdOf(event))}-`)) {
              wrongDevice.push(id);
            }
          }
          await Promise.resolve();
        },
        processError: async () => {
          await Promise.resolve();
        },
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1, maxBatchSize: 500 },
    );
    try {
      await eventually(
        'every acknowledged message to be read back',
        () => ([...acknowledged].every((id) => seen.has(id)) ? true : undefined),
        40_000,
      ).catch((error: unknown) => {
        const missing = [...acknowledged].filter((id) => !seen.has(id));
        throw new Error(`${String(error)}; ${missing.length} acknowledged messages missing`);
      });
      expect(new Set(positions).size).toBe(positions.length);

      // Sequence numbers continue after the restart instead of reusing recovered ones.
      const { deviceId, key } = streaming[0]!;
      const latecomer = deviceClient(second, deviceId, key);
      await latecomer.open();
      const message = new Message('after the restart');
      message.messageId = `${deviceId}-after-restart`;
      const before = new Map(lastSequence);
      await latecomer.sendEvent(message);
      await eventually('the post-restart message', () =>
        seen.has(message.messageId) ? true : undefined,
      );
      const grew = [...lastSequence].filter(([p, n]) => n > (before.get(p) ?? -1));
      expect(grew).toHaveLength(1);
      expect(grew[0]![1]).toBe((before.get(grew[0]![0]) ?? -1) + 1);
    } finally {
      await subscription.close();
      await consumer.close();
    }
    expect(wrongDevice).toEqual([]);

    // The offline device's queue survived: it receives all three when it finally connects.
    const offline = devices.find((d) => d.deviceId === OFFLINE_DEVICE)!;
    const receiver = deviceClient(second, offline.deviceId, offline.key);
    const received: string[] = [];
    receiver.on('message', (message: CommonMessage) => {
      received.push(text(message.getData()));
      void receiver.complete(message);
    });
    await receiver.open();
    await eventually('queued C2D messages', () =>
      received.length >= queued.length ? true : undefined,
    );
    expect(received).toEqual(queued.map((id) => `body of ${id}`));

    await second.stop();
    expect(await second.exited).toMatchObject({ code: 0 });
  },
  120_000,
);
