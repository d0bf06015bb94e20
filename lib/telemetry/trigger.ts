/**
 * How the telemetry function is registered and what its handler does around the processor.
 *
 * - `dataType: 'binary'`: without it the host hands a `many` batch over as one JSON array, and a
 *   single non-JSON body fails the whole invocation; as bytes every body reaches the handler.
 *   `EventHubTriggerOptions` has no `dataType`, so it goes on the `trigger` object.
 * - `eventHubName` is required by the library's types. For IoT Hub's built-in endpoint the
 *   connection string's `EntityPath` names the hub and takes precedence, so it is a setting
 *   expression (`%IOTHUB_EVENTS_NAME%`) rather than a literal that could disagree.
 * - Retries: exponential backoff, indefinitely. For Event Hubs the host checkpoints a batch after
 *   its last failed retry, so a finite count would skip readings during a long storage outage;
 *   the handler only throws for infrastructure failures, never for a bad event.
 */
import {
  trigger,
  type EventHubFunctionOptions,
  type EventHubHandler,
  type InvocationContext,
} from '@azure/functions';
import { SettingNames } from '../settings';
import { describeError } from './errors';
import { formatSummary, type TelemetryProcessor } from './processor';

/** App setting naming the Event Hub-compatible name (the IoT Hub's EntityPath). */
export const eventsNameSetting = SettingNames.eventsName;

export const telemetryRetry = {
  strategy: 'exponentialBackoff',
  maxRetryCount: -1,
  minimumInterval: { seconds: 5 },
  maximumInterval: { minutes: 5 },
} as const;

export function telemetryTriggerOptions(
  handler: EventHubHandler,
): EventHubFunctionOptions & { trigger: ReturnType<typeof trigger.eventHub> } {
  const options = {
    connection: SettingNames.eventsConnection,
    eventHubName: `%${eventsNameSetting}%`,
    consumerGroup: `%${SettingNames.eventsConsumerGroup}%`,
    cardinality: 'many' as const,
  };
  return {
    ...options,
    trigger: { ...trigger.eventHub(options), dataType: 'binary' },
    retry: { ...telemetryRetry },
    handler,
  };
}

/**
 * The trigger handler: process the batch, log one summary line. A failure is logged without its
 * message details beyond a redacted one-liner and rethrown, so the host's retry replays the
 * batch.
 */
export function createTelemetryHandler(
  getProcessor: () => TelemetryProcessor,
): (messages: unknown, context: InvocationContext) => Promise<void> {
  return async (messages, context) => {
    const retry = context.retryContext?.retryCount ?? 0;
    try {
      const summary = await getProcessor().processBatch(messages, context.triggerMetadata);
      context.log(`${formatSummary(summary)}${retry > 0 ? ` retry=${retry}` : ''}`);
    } catch (error) {
      context.error(
        `telemetry batch not stored; the host will retry it (retry=${retry}): ${describeError(error)}`,
      );
      throw error;
    }
  };
}
