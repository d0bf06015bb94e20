/**
 * Checkpointed consumers on the Event Hub-compatible endpoint: `EventHubConsumerClient` with
 * `BlobCheckpointStore` (@azure/eventhubs-checkpointstore-blob) on Azurite, as the Functions host
 * keeps its checkpoints. A consumer reads and checkpoints, stops; more telemetry arrives; a new
 * consumer resumes right after the checkpoint, with no duplicates and nothing missed.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both).
 */
import {
  EventHubConsumerClient,
  earliestEventPosition,
  type ReceivedEventData,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { ContainerClient } from '@azure/storage-blob';
import type { Client as DeviceClient } from 'azure-iot-device';
import { Message } from 'azure-iot-device';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startAzurite, type AzuriteInstance } from '../support/azurite';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { until, type Probe } from '../support/wait';

let emulator: EmulatorInstance;
let azurite: AzuriteInstance;
let device: DeviceClient;
let checkpointStore: BlobCheckpointStore;
/** Consumers still running, stopped in afterAll should a test fail midway. */
const running = new Set<() => Promise<void>>();

/** Waits here allow 20 s rather than the shared default. */
const eventually = <T>(what: string, probe: Probe<T>, timeoutMs = 20_000): Promise<T> =>
  until(what, probe, timeoutMs);

async function sendAll(ids: string[]): Promise<void> {
  for (const id of ids) {
    const message = new Message(JSON.stringify({ id }));
    message.messageId = id;
    await device.sendEvent(message);
  }
}

/** One checkpointing consumer (greedy load balancing, short interval) for the whole hub. */
function checkpointingConsumer(): {
  namespace: string;
  received: ReceivedEventData[];
  errors: Error[];
  stop: () => Promise<void>;
} {
  const client = new EventHubConsumerClient(
    '$Default',
    emulator.connection.eventsConnectionString,
    checkpointStore,
    { loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 250 } },
  );
  const received: ReceivedEventData[] = [];
  const errors: Error[] = [];
  const subscription = client.subscribe(
    {
      processEvents: async (events, context) => {
        received.push(...events);
        const last = events[events.length - 1];
        if (last) await context.updateCheckpoint(last);
      },
      processError: (error) => {
        errors.push(error);
        return Promise.resolve();
      },
    },
    // The start position applies only where no checkpoint exists (the SDK's default is latest).
    { maxWaitTimeInSeconds: 1, maxBatchSize: 2, startPosition: earliestEventPosition },
  );
  const stop = async (): Promise<void> => {
    running.delete(stop);
    await subscription.close();
    await client.close();
  };
  running.add(stop);
  return { namespace: client.fullyQualifiedNamespace, received, errors, stop };
}

beforeAll(async () => {
  [emulator, azurite] = await Promise.all([
    startEmulator({ inMemory: true, partitions: 2 }),
    startAzurite(),
  ]);
  const containerClient = new ContainerClient(azurite.connectionString, 'checkpoints');
  await containerClient.create();
  checkpointStore = new BlobCheckpointStore(containerClient);

  const registry = createRegistry(emulator.connection.serviceConnectionString);
  const { key } = await registerDevice(registry, 'checkpointed');
  device = mqttDeviceClient(emulator.connection.deviceConnectionString('checkpointed', key));
  await device.open();
});

afterAll(async () => {
  await Promise.allSettled([...running].map((stop) => stop()));
  await device?.close();
  await Promise.allSettled([emulator?.stop(), azurite?.stop()]);
});

it('a new consumer resumes after the checkpoint without duplicates', async () => {
  const firstBatch = ['cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5'];
  await sendAll(firstBatch);
  const first = checkpointingConsumer();
  await eventually('the first consumer to read everything', () =>
    first.received.length >= firstBatch.length ? true : undefined,
  );
  const last = first.received[first.received.length - 1]!;
  const checkpoint = await eventually(
    'the checkpoint of the last event in the blob store',
    async () => {
      const checkpoints = await checkpointStore.listCheckpoints(
        first.namespace,
        emulator.connection.eventsName,
        '$Default',
      );
      return checkpoints.find((c) => c.sequenceNumber === last.sequenceNumber);
    },
  );
  expect(checkpoint.offset).toBe(last.offset);
  await first.stop();
  expect(first.received.map((e) => e.messageId)).toEqual(firstBatch);
  expect(first.errors).toEqual([]);

  const secondBatch = ['cp-6', 'cp-7', 'cp-8'];
  await sendAll(secondBatch);
  const second = checkpointingConsumer();
  await eventually('the second consumer to read the new events', () =>
    second.received.length >= secondBatch.length ? true : undefined,
  );
  await second.stop();
  expect(second.received.map((e) => e.messageId)).toEqual(secondBatch);
  expect(second.errors).toEqual([]);
});
