/**
 * The Event Hub-compatible endpoint against the unmodified `@azure/event-hubs` client, with
 * telemetry sent by real devices (`azure-iot-device` over MQTT) to the emulator process.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both).
 */
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
  type EventPosition,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import type { Client as DeviceClient } from 'azure-iot-device';
import { Message } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let registry: Registry;
const devices: DeviceClient[] = [];
const consumers: EventHubConsumerClient[] = [];
const subscriptions: Subscription[] = [];
let nextDevice = 0;

/** A registered, connected device. */
async function connectedDevice(): Promise<{ deviceId: string; client: DeviceClient }> {
  nextDevice += 1;
  const deviceId = `events-device-${nextDevice}`;
  const { key } = await registerDevice(registry, deviceId);
  const client = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
  devices.push(client);
  await client.open();
  return { deviceId, client };
}

async function send(
  client: DeviceClient,
  messageId: string,
  body: Buffer | string = `{"id":"${messageId}"}`,
  configure: (message: Message) => void = () => undefined,
): Promise<void> {
  const message = new Message(body);
  message.messageId = messageId;
  configure(message);
  await client.sendEvent(message);
}

function consumer(consumerGroup = '$Default', connectionString?: string): EventHubConsumerClient {
  const client = new EventHubConsumerClient(
    consumerGroup,
    connectionString ?? emulator.connection.eventsConnectionString,
    { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } },
  );
  consumers.push(client);
  return client;
}

interface Reader {
  events: ReceivedEventData[];
  errors: Error[];
  /** processEvents calls, empty ones included: > 0 once the link is reading. */
  batches: number;
  messageIds(): unknown[];
}

function read(
  client: EventHubConsumerClient,
  partitionId: string,
  startPosition: EventPosition,
  extra: { ownerLevel?: number } = {},
): Reader {
  const reader: Reader = {
    events: [],
    errors: [],
    batches: 0,
    messageIds: () => reader.events.map((e) => e.messageId),
  };
  subscriptions.push(
    client.subscribe(
      partitionId,
      {
        processEvents: (events) => {
          reader.batches += 1;
          reader.events.push(...events);
          return Promise.resolve();
        },
        processError: (error) => {
          reader.errors.push(error);
          return Promise.resolve();
        },
      },
      { startPosition, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true, ...extra },
    ),
  );
  return reader;
}

/** The partition a device's telemetry lands in: the one whose last event is the given message. */
async function partitionOf(deviceMessageId: string): Promise<string> {
  const client = consumer();
  const { partitionIds } = await client.getEventHubProperties();
  const readers = partitionIds.map((id) => ({
    id,
    reader: read(client, id, earliestEventPosition),
  }));
  return until(
    `partition of ${deviceMessageId}`,
    () => readers.find(({ reader }) => reader.messageIds().includes(deviceMessageId))?.id,
  );
}

beforeAll(async () => {
  emulator = await startEmulator({
    inMemory: true,
    partitions: 2,
    args: ['--consumer-group', 'processors'],
  });
  registry = createRegistry(emulator.connection.serviceConnectionString);
});

afterEach(async () => {
  await Promise.allSettled(subscriptions.splice(0).map((s) => s.close()));
  await Promise.allSettled(consumers.splice(0).map((c) => c.close()));
  await Promise.allSettled(devices.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  await emulator?.stop();
});

describe('runtime information', () => {
  it('describes the hub and its partitions, empty and after telemetry', async () => {
    const client = consumer();
    const hub = await client.getEventHubProperties();
    expect(hub.name).toBe(emulator.connection.eventsName);
    expect(hub.partitionIds).toEqual(['0', '1']);
    for (const id of hub.partitionIds) {
      expect(await client.getPartitionProperties(id)).toMatchObject({
        eventHubName: emulator.connection.eventsName,
        partitionId: id,
        isEmpty: true,
        lastEnqueuedSequenceNumber: -1,
      });
    }

    const { client: device } = await connectedDevice();
    await send(device, 'props-1');
    const partitionId = await partitionOf('props-1');
    const filled = await client.getPartitionProperties(partitionId);
    expect(filled).toMatchObject({ isEmpty: false, lastEnqueuedSequenceNumber: 0 });
    expect(filled.beginningSequenceNumber).toBe(0);
    expect(Math.abs(filled.lastEnqueuedOnUtc.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('answers not found for an unknown partition', async () => {
    await expect(consumer().getPartitionProperties('5')).rejects.toMatchObject({
      code: 'MessagingEntityNotFoundError',
    });
  });
});

describe('receiving telemetry', () => {
  it('delivers system properties, application properties and body bytes intact', async () => {
    const { deviceId, client: device } = await connectedDevice();
    const body = Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x80]);
    await send(device, 'bytes-1', body, (message) => {
      message.correlationId = 'corr-1';
      // IoT Hub passes any content type/encoding through; the SDK's typings list only the
      // values message routing understands.
      Object.assign(message, {
        contentType: 'application/octet-stream',
        contentEncoding: 'binary',
      });
      message.properties.add('alert', 'true');
      message.properties.add('needs escaping', 'a&b=c/d?é');
    });
    const partitionId = await partitionOf('bytes-1');
    const reader = read(consumer(), partitionId, earliestEventPosition);
    const event = await until('the event', () =>
      reader.events.find((e) => e.messageId === 'bytes-1'),
    );
    expect(Buffer.from(event.body as Uint8Array)).toEqual(body);
    expect(event.correlationId).toBe('corr-1');
    expect(event.contentType).toBe('application/octet-stream');
    expect(event.properties).toEqual({ alert: 'true', 'needs escaping': 'a&b=c/d?é' });
    expect(event.systemProperties).toMatchObject({
      'iothub-connection-device-id': deviceId,
      'iothub-message-source': 'Telemetry',
      contentEncoding: 'binary',
    });
    const authMethod = JSON.parse(
      String(event.systemProperties?.['iothub-connection-auth-method']),
    ) as Record<string, unknown>;
    expect(authMethod).toMatchObject({ scope: 'device', type: 'sas', issuer: 'iothub' });
    expect(typeof event.systemProperties?.['iothub-connection-auth-generation-id']).toBe('string');
    expect(event.systemProperties?.['iothub-enqueuedtime']).toBe(event.enqueuedTimeUtc.getTime());
    expect(typeof event.sequenceNumber).toBe('number');
    expect(typeof event.offset).toBe('string');
    expect(reader.errors).toEqual([]);
  });

  it('from latest, delivers only what arrives after the link opened', async () => {
    const { client: device } = await connectedDevice();
    await send(device, 'latest-old');
    const partitionId = await partitionOf('latest-old');
    const reader = read(consumer(), partitionId, latestEventPosition);
    await until('the link reading', () => (reader.batches > 0 ? true : undefined));
    await send(device, 'latest-new-1');
    await send(device, 'latest-new-2');
    await until('two new events', () => (reader.events.length >= 2 ? true : undefined));
    expect(reader.messageIds()).toEqual(['latest-new-1', 'latest-new-2']);
  });

  it('starts after a sequence number, and after an enqueued time', async () => {
    const { client: device } = await connectedDevice();
    for (const id of ['pos-1', 'pos-2', 'pos-3']) await send(device, id);
    const partitionId = await partitionOf('pos-3');
    const all = read(consumer(), partitionId, earliestEventPosition);
    await until('all events', () => (all.messageIds().includes('pos-3') ? true : undefined));
    const first = all.events.find((e) => e.messageId === 'pos-1')!;
    const later = all.events.filter((e) => e.sequenceNumber > first.sequenceNumber);

    const bySequence = read(consumer(), partitionId, { sequenceNumber: first.sequenceNumber });
    await until('events after the sequence number', () =>
      bySequence.events.length >= later.length ? true : undefined,
    );
    expect(bySequence.events.map((e) => e.sequenceNumber)).toEqual(
      later.map((e) => e.sequenceNumber),
    );

    const inclusive = read(consumer(), partitionId, {
      sequenceNumber: first.sequenceNumber,
      isInclusive: true,
    });
    await until('events from the sequence number', () =>
      inclusive.events.length > later.length ? true : undefined,
    );
    expect(inclusive.events[0]!.messageId).toBe('pos-1');

    const since = first.enqueuedTimeUtc.getTime();
    const expected = all.events.filter((e) => e.enqueuedTimeUtc.getTime() > since);
    const byTime = read(consumer(), partitionId, { enqueuedOn: first.enqueuedTimeUtc });
    await until('the link reading by time', () =>
      byTime.batches > 0 && byTime.events.length >= expected.length ? true : undefined,
    );
    expect(byTime.events.map((e) => e.sequenceNumber)).toEqual(
      expected.map((e) => e.sequenceNumber),
    );
  });
});

describe('consumer groups, epochs and authorization', () => {
  it('reads the same events in a configured consumer group; an unknown group is not found', async () => {
    const { client: device } = await connectedDevice();
    await send(device, 'group-1');
    const partitionId = await partitionOf('group-1');
    const processors = read(consumer('processors'), partitionId, earliestEventPosition);
    await until('the event in the processors group', () =>
      processors.messageIds().includes('group-1') ? true : undefined,
    );
    const unknown = read(consumer('no-such-group'), partitionId, earliestEventPosition);
    const error = await until('an error', () => unknown.errors[0]);
    expect(error).toMatchObject({ code: 'MessagingEntityNotFoundError' });
    expect(unknown.events).toEqual([]);
  });

  it('a higher owner level takes the partition from the current reader', async () => {
    const { client: device } = await connectedDevice();
    await send(device, 'epoch-1');
    const partitionId = await partitionOf('epoch-1');
    const first = read(consumer(), partitionId, earliestEventPosition, { ownerLevel: 1 });
    await until('the first reader reading', () =>
      first.messageIds().includes('epoch-1') ? true : undefined,
    );
    const second = read(consumer(), partitionId, latestEventPosition, { ownerLevel: 2 });
    const stolen = await until('the first reader losing the partition', () => first.errors[0]);
    expect(stolen).toMatchObject({ code: 'ReceiverDisconnectedError' });
    await until('the second reader reading', () => (second.batches > 0 ? true : undefined));
    await send(device, 'epoch-2');
    await until('the second reader getting new events', () =>
      second.messageIds().includes('epoch-2') ? true : undefined,
    );
    expect(first.messageIds()).not.toContain('epoch-2');
    expect(second.errors).toEqual([]);
  });

  it('refuses a wrong key', async () => {
    const wrongKey = Buffer.from('definitely not the service key').toString('base64');
    const connectionString = emulator.connection.eventsConnectionString.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${wrongKey}`,
    );
    const client = consumer('$Default', connectionString);
    await expect(client.getEventHubProperties()).rejects.toMatchObject({
      code: 'UnauthorizedError',
    });
    const reader = read(client, '0', earliestEventPosition);
    const error = await until('an error', () => reader.errors[0]);
    expect(error).toMatchObject({ code: 'UnauthorizedError' });
    expect(emulator.output()).not.toContain(wrongKey);
  });
});
