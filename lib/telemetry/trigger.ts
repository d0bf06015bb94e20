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
 *   the handler only throws for infrastructure failures, never for a bad event: events and rows
 *   that Table storage rejects for good are dead-lettered (`writer.ts`).
 */
import {
  trigger,
  type EventHubFunctionOptions,
  type EventHubHandler,
  type InvocationContext,
} from '@azure/functions';
import { SettingNames } from '../settings';
import { classifyStorageFailure } from '../storage/failure-class';
import { describeError } from './errors';
import { partitionOf } from './event-metadata';
import { defaultStallThresholdMs, formatSummary, type TelemetryProcessor } from './processor';
import { StallMonitor, type StallReason } from './stall';

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

function stallReason(error: unknown): StallReason {
  const failure = classifyStorageFailure(error);
  return failure.kind === 'transient' ? failure.reason : 'rejected';
}

/**
 * The trigger handler: process the batch, log one summary line. A failure is logged without its
 * message details beyond a redacted one-liner and rethrown, so the host's retry replays the
 * batch; each outcome is recorded in `monitor` per partition, and a partition that has been
 * failing for longer than the processor's stall threshold is logged as stalled (and reported by
 * `/api/health`).
 */
export function createTelemetryHandler(
  getProcessor: () => TelemetryProcessor,
  monitor: StallMonitor = new StallMonitor(),
): (messages: unknown, context: InvocationContext) => Promise<void> {
  return async (messages, context) => {
    const retry = context.retryContext?.retryCount ?? 0;
    const partition = partitionOf(context.triggerMetadata);
    let thresholdMs = defaultStallThresholdMs;
    try {
      const processor = getProcessor();
      thresholdMs = processor.stallThresholdMs;
      const summary = await processor.processBatch(messages, context.triggerMetadata);
      monitor.succeeded(partition);
      context.log(`${formatSummary(summary)}${retry > 0 ? ` retry=${retry}` : ''}`);
    } catch (error) {
      const reason = stallReason(error);
      const { stalledMs, stalled } = monitor.failed(partition, reason, thresholdMs);
      context.error(
        `telemetry batch not stored; the host will retry it (retry=${retry}, reason=${reason}): ${describeError(error)}`,
      );
      if (stalled) {
        context.error(
          `telemetry partition ${partition} stalled: the same batch has failed for ${Math.round(stalledMs / 1000)} s (${reason}); health reports telemetry degraded`,
        );
      }
      throw error;
    }
  };
}
