/**
 * Reads device-to-cloud events back from the emulator's Event Hub-compatible endpoint with the
 * official `@azure/event-hubs` consumer, so tests can wait (with `until`) for what they sent.
 */
import {
  EventHubConsumerClient,
  earliestEventPosition,
  type ReceivedEventData,
} from '@azure/event-hubs';

/** Every event read so far, from the earliest one on every partition. */
export interface EventLog {
  readonly events: readonly ReceivedEventData[];
  /** The events `deviceId` sent, in the order they were read. */
  from(deviceId: string): ReceivedEventData[];
  close(): Promise<void>;
}

/** The sending device, as IoT Hub stamps it on every event. */
export function deviceIdOf(event: ReceivedEventData): unknown {
  return event.systemProperties?.['iothub-connection-device-id'];
}

/**
 * Subscribes to all partitions from the earliest event and keeps what arrives. Receive errors are
 * left to the consumer's own retries: the tests wait for the events they expect, with a deadline.
 */
export function collectEvents(
  eventsConnectionString: string,
  consumerGroup = '$Default',
): EventLog {
  const events: ReceivedEventData[] = [];
  const consumer = new EventHubConsumerClient(consumerGroup, eventsConnectionString);
  const subscription = consumer.subscribe(
    {
      processEvents: async (received) => {
        events.push(...received);
        await Promise.resolve();
      },
      processError: async () => {
        await Promise.resolve();
      },
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
  return {
    events,
    from: (deviceId) => events.filter((event) => deviceIdOf(event) === deviceId),
    async close() {
      await subscription.close();
      await consumer.close();
    },
  };
}
