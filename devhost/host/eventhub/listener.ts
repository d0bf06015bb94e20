/**
 * One Event Hub trigger: an `EventHubConsumerClient` with a blob checkpoint store in
 * `AzureWebJobsStorage` (container `azure-webjobs-eventhub`, the host's layout), batches sized by
 * `host.json`, retries by the function's policy, and a checkpoint after each batch completes or
 * exhausts its retries. A stop interrupts retries without checkpointing, so the batch is
 * delivered again on the next start (at least once, never lost).
 */
import type {
  EventPosition,
  PartitionContext,
  ReceivedEventData,
  Subscription,
} from '@azure/event-hubs';
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
} from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { ContainerClient } from '@azure/storage-blob';
import type { EventHubsHostOptions } from '../app-config';
import type { RegisteredFunction } from '../core-api';
import type { InvocationInput, InvocationResult } from '../invoke';
import type { HostLog } from '../log';
import type { RetryPolicy } from '../retry';
import { invokeWithRetries } from '../retry';
import type { Cardinality, EventDataType } from './convert';
import { toEventHubInvocationData } from './convert';

export const checkpointContainerName = 'azure-webjobs-eventhub';

export interface EventHubTriggerConfig {
  fn: RegisteredFunction;
  triggerName: string;
  /** The connection string (already resolved from the `connection` setting). */
  connectionString: string;
  connectionSettingName: string;
  eventHubName: string | undefined;
  consumerGroup: string;
  cardinality: Cardinality;
  dataType: EventDataType;
  retry: RetryPolicy | undefined;
}

export interface EventHubListenerOptions {
  trigger: EventHubTriggerConfig;
  hostOptions: EventHubsHostOptions;
  storageConnectionString: string;
  /** Stable owner id, so a restarted host takes its partitions back at once. */
  ownerId: string;
  /** Load-balancing loop interval (ms). */
  loadBalancingIntervalMs: number;
  log: HostLog;
  invoke(fn: RegisteredFunction, input: InvocationInput): Promise<InvocationResult>;
}

function startPosition(options: EventHubsHostOptions): EventPosition {
  const offset = options.initialOffset;
  if (offset.type === 'fromEnd') return latestEventPosition;
  if (offset.type === 'fromEnqueuedTime') return { enqueuedOn: offset.enqueuedTimeUtc };
  return earliestEventPosition;
}

function hasEntityPath(connectionString: string): boolean {
  return /(^|;)\s*EntityPath\s*=/i.test(connectionString);
}

export class EventHubListener {
  #client: EventHubConsumerClient | undefined;
  #subscription: Subscription | undefined;
  #stopping = false;
  #inFlight = new Set<Promise<void>>();
  #sleepers = new Set<() => void>();
  #batchesSinceCheckpoint = new Map<string, number>();

  constructor(private readonly options: EventHubListenerOptions) {}

  get name(): string {
    return this.options.trigger.fn.metadata.name;
  }

  async start(): Promise<void> {
    const { trigger } = this.options;
    const container = new ContainerClient(
      this.options.storageConnectionString,
      checkpointContainerName,
    );
    await container.createIfNotExists();
    const store = new BlobCheckpointStore(container);
    const clientOptions = {
      identifier: this.options.ownerId,
      loadBalancingOptions: {
        strategy: 'greedy' as const,
        updateIntervalInMs: this.options.loadBalancingIntervalMs,
      },
    };
    if (hasEntityPath(trigger.connectionString)) {
      this.#client = new EventHubConsumerClient(
        trigger.consumerGroup,
        trigger.connectionString,
        store,
        clientOptions,
      );
      if (trigger.eventHubName && trigger.eventHubName !== this.#client.eventHubName) {
        await this.#client.close();
        throw new Error(
          `function "${this.name}": eventHubName "${trigger.eventHubName}" differs from the EntityPath of the ` +
            `connection "${trigger.connectionSettingName}"`,
        );
      }
    } else {
      if (!trigger.eventHubName) {
        throw new Error(
          `function "${this.name}": eventHubName is required when the connection has no EntityPath`,
        );
      }
      this.#client = new EventHubConsumerClient(
        trigger.consumerGroup,
        trigger.connectionString,
        trigger.eventHubName,
        store,
        clientOptions,
      );
    }
    const host = this.options.hostOptions;
    this.#subscription = this.#client.subscribe(
      {
        processEvents: (events, context) => this.#track(this.#processBatch(events, context)),
        processError: (error, context) => {
          if (this.#stopping) return Promise.resolve();
          const where = context.partitionId ? ` (partition ${context.partitionId})` : '';
          this.options.log.warn(`Event Hub trigger "${this.name}"${where}: ${error.message}`);
          return Promise.resolve();
        },
      },
      {
        maxBatchSize: host.maxEventBatchSize,
        maxWaitTimeInSeconds: host.maxWaitTimeSeconds,
        startPosition: startPosition(host),
        prefetchCount: Math.max(host.prefetchCount, host.maxEventBatchSize),
        skipParsingBodyAsJson: true,
      },
    );
  }

  #track(work: Promise<void>): Promise<void> {
    this.#inFlight.add(work);
    return work.finally(() => this.#inFlight.delete(work));
  }

  #sleep(ms: number): Promise<boolean> {
    if (this.#stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.#sleepers.delete(wake);
        resolve(!this.#stopping);
      }, ms);
      this.#sleepers.add(wake);
    });
  }

  async #processBatch(events: ReceivedEventData[], context: PartitionContext): Promise<void> {
    if (events.length === 0 || this.#stopping) return;
    const { trigger } = this.options;
    const partition = {
      fullyQualifiedNamespace: context.fullyQualifiedNamespace,
      eventHubName: context.eventHubName,
      consumerGroup: context.consumerGroup,
      partitionId: context.partitionId,
    };
    const groups = trigger.cardinality === 'one' ? events.map((e) => [e]) : [events];
    for (const group of groups) {
      let input: InvocationInput;
      try {
        const data = toEventHubInvocationData(group, {
          cardinality: trigger.cardinality,
          dataType: trigger.dataType,
          functionName: this.name,
          partition,
        });
        input = {
          inputData: [{ name: trigger.triggerName, data: data.input }],
          triggerMetadata: data.triggerMetadata,
        };
      } catch (error) {
        // The host cannot bind such a batch; it logs the failure and moves on.
        this.options.log.error(
          `Executed '${this.name}' (Failed, binding): ${(error as Error).message}`,
        );
        continue;
      }
      const outcome = await invokeWithRetries({
        policy: trigger.retry,
        input,
        invoke: (attempt) => this.options.invoke(trigger.fn, attempt),
        sleep: (ms) => this.#sleep(ms),
        onRetry: (retry, delay) =>
          this.options.log.warn(
            `'${this.name}' failed; retry ${retry} of ${trigger.retry?.maxRetryCount ?? 0} in ${delay}ms`,
          ),
      });
      if (!outcome.settled) return; // stopped mid-retry: no checkpoint, the batch comes again
      if (outcome.last && !outcome.last.ok && trigger.retry) {
        this.options.log.error(
          `'${this.name}': retries exhausted; checkpointing past the failed batch`,
        );
      }
    }
    const last = events[events.length - 1];
    if (!last) return;
    const count = (this.#batchesSinceCheckpoint.get(context.partitionId) ?? 0) + 1;
    if (count >= this.options.hostOptions.batchCheckpointFrequency) {
      await context.updateCheckpoint(last);
      this.#batchesSinceCheckpoint.set(context.partitionId, 0);
    } else {
      this.#batchesSinceCheckpoint.set(context.partitionId, count);
    }
  }

  /** Stops taking batches, lets in-flight invocations finish (and checkpoint), closes the client. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const wake of [...this.#sleepers]) wake();
    await Promise.allSettled([...this.#inFlight]);
    await this.#subscription?.close();
    await this.#client?.close();
  }
}
