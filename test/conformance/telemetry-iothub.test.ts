/**
 * The tutorial's telemetry path end to end, minus the Functions host: a real `azure-iot-device`
 * MQTT device sends to the local IoT Hub, `@azure/event-hubs` reads the Event Hub-compatible
 * endpoint, each partition's events are handed to the telemetry handler in the shape the host
 * delivers (`dataType: 'binary'`, trigger metadata camel-cased by `@azure/functions`), and the
 * readings land in Azurite.
 *
 * Needs `npm run build` (the emulator runs from dist/) and the test CA trusted through
 * `NODE_EXTRA_CA_CERTS` (`npm test` arranges both).
 */
import {
  EventHubConsumerClient,
  earliestEventPosition,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { Message } from 'azure-iot-device';
import type { Registry } from 'azure-iothub';
import { eventBodyBytes, systemPropertiesOf } from '../../devhost/host/eventhub/convert';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { TableEntityStore } from '../../lib/storage/table-entity-store';
import { TableNames } from '../../lib/storage/tables';
import { createTelemetryReadHandler } from '../../lib/telemetry/http';
import { TelemetryProcessor } from '../../lib/telemetry/processor';
import { createTelemetryHandler } from '../../lib/telemetry/trigger';
import { startAzurite, tableEntities, type AzuriteInstance } from '../support/azurite';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { deviceIdOf } from '../support/events';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { until, type Probe } from '../support/wait';

let emulator: EmulatorInstance;
let azurite: AzuriteInstance;
let registry: Registry;
let consumer: EventHubConsumerClient;
let subscription: Subscription;
const received: { partitionId: string; event: ReceivedEventData }[] = [];

/** Waits here allow 20 s rather than the shared default. */
const eventually = <T>(what: string, probe: Probe<T>, timeoutMs = 20_000): Promise<T> =>
  until(what, probe, timeoutMs);

/** What JSON serialization of the host's values gives (dates as ISO text, uuids as text). */
function plain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** The library camel-cases every key recursively (first letter lower-cased). */
function camelCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelCase);
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), camelCase(v)]),
  );
}

/**
 * `messages` and `context.triggerMetadata` as the host gives them to a `dataType: 'binary'` handler;
 * bodies and system properties through the local Functions host's own converter.
 */
function hostInvocation(partitionId: string, events: readonly ReceivedEventData[]) {
  const metadata = {
    PartitionContext: {
      ConsumerGroup: '$Default',
      EventHubName: emulator.connection.eventsName,
      FullyQualifiedNamespace: 'localhost',
      PartitionId: partitionId,
    },
    PartitionKeyArray: [],
    OffsetArray: events.map((e) => String(e.offset)),
    SequenceNumberArray: events.map((e) => e.sequenceNumber),
    EnqueuedTimeUtcArray: events.map((e) => e.enqueuedTimeUtc.toISOString()),
    PropertiesArray: events.map((e) =>
      Object.fromEntries(Object.entries(e.properties ?? {}).map(([k, v]) => [k, plain(v)])),
    ),
    SystemPropertiesArray: events.map(systemPropertiesOf),
  };
  const messages = events.map(eventBodyBytes);
  return { messages, triggerMetadata: camelCase(metadata) as Record<string, unknown> };
}

beforeAll(async () => {
  [emulator, azurite] = await Promise.all([startEmulator({ inMemory: true }), startAzurite()]);
  registry = createRegistry(emulator.connection.serviceConnectionString);
  consumer = new EventHubConsumerClient('$Default', emulator.connection.eventsConnectionString);
  subscription = consumer.subscribe(
    {
      processEvents: async (events, context) => {
        for (const event of events) received.push({ partitionId: context.partitionId, event });
        await Promise.resolve();
      },
      processError: async () => {
        await Promise.resolve();
      },
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
  );
});

afterAll(async () => {
  await subscription?.close();
  await consumer?.close();
  await Promise.all([emulator?.stop(), azurite?.stop()]);
});

describe('telemetry from a real MQTT device through the local IoT Hub', () => {
  it('stores the tutorial readings attributed to the authenticated device, dead-letters the rest', async () => {
    const deviceId = 'tutorial-device';
    const { key } = await registerDevice(registry, deviceId);
    const device = mqttDeviceClient(emulator.connection.deviceConnectionString(deviceId, key));
    await device.open();
    try {
      const sent: string[] = [];
      for (const windSpeed of [12.25, 16.5]) {
        // The tutorial's message; the body names another device, which must not matter.
        const message = new Message(JSON.stringify({ deviceId: 'impostor', windSpeed }));
        message.messageId = `tutorial-${windSpeed}`;
        message.correlationId = `corr-${windSpeed}`;
        message.contentType = 'application/json';
        message.contentEncoding = 'utf-8';
        message.properties.add('Property', `value-${windSpeed}`);
        await device.sendEvent(message);
        sent.push(message.messageId);
      }
      const encoded = new Message(
        Buffer.from(JSON.stringify({ windSpeed: 13 })).toString('base64'),
      );
      // The device SDK only knows utf-8/16/32 encodings: base64 is recognised by its shape.
      encoded.messageId = 'base64';
      encoded.contentEncoding = 'utf-8';
      await device.sendEvent(encoded);
      const garbage = new Message('not json at all');
      garbage.messageId = 'garbage';
      await device.sendEvent(garbage);
    } finally {
      await device.close();
    }

    const ours = await eventually('the device events', () => {
      const events = received.filter((r) => deviceIdOf(r.event) === deviceId);
      return events.length >= 4 ? events : undefined;
    });

    const store = TableEntityStore.fromSettings({
      kind: 'connectionString',
      connectionString: azurite.connectionString,
    });
    const processor = new TelemetryProcessor(store, {
      alertThreshold: 15,
      deadLetterMaxBodyBytes: 4096,
    });
    const handler = createTelemetryHandler(() => processor);
    const byPartition = new Map<string, ReceivedEventData[]>();
    for (const { partitionId, event } of ours) {
      byPartition.set(partitionId, [...(byPartition.get(partitionId) ?? []), event]);
    }
    for (const [partitionId, events] of byPartition) {
      const { messages, triggerMetadata } = hostInvocation(partitionId, events);
      await handler(messages, new InvocationContext({ triggerMetadata }));
    }

    const read = createTelemetryReadHandler(() => store);
    const response = await read(
      new HttpRequest({
        method: 'GET',
        url: `http://localhost/api/devices/${deviceId}/telemetry`,
        params: { deviceId },
      }),
      new InvocationContext(),
    );
    expect(response.status).toBe(200);
    const body = JSON.parse(response.body as string) as {
      items: Record<string, unknown>[];
      latest?: Record<string, unknown>;
    };
    expect(body.items.map((i) => i.messageId)).toEqual([
      'base64',
      'tutorial-16.5',
      'tutorial-12.25',
    ]);
    expect(body.items[1]).toMatchObject({
      windSpeed: 16.5,
      deviceId,
      correlationId: 'corr-16.5',
      properties: { property: 'value-16.5' },
      partition: byPartition.keys().next().value,
    });
    expect(typeof body.items[1]?.sequenceNumber).toBe('number');
    expect(Date.parse(String(body.items[1]?.enqueuedTime))).not.toBeNaN();
    expect(body.latest).toMatchObject({ messageId: 'base64', windSpeed: 13 });

    const dead = await tableEntities(azurite.connectionString, TableNames.deadLetters);
    expect(dead).toEqual([
      expect.objectContaining({
        deviceId,
        messageId: 'garbage',
        reason: 'not-json',
        bodyText: 'not json at all',
      }),
    ]);
    const raised = await tableEntities(azurite.connectionString, TableNames.alerts);
    expect(raised.map((a) => a.messageId)).toEqual(['tutorial-16.5']);
  });
});
