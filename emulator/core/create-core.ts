/**
 * Assembles the core: picks the store (durable when `dataDir` is given, in memory otherwise —
 * the one place that choice is made), recovers state from it, and wires the components.
 */
import { C2DQueues } from './c2d-queues';
import { SystemClock } from './clock';
import type { CoreOptions, IotHubCore } from './contracts';
import { D2CPartitions } from './d2c-partitions';
import { FeedbackBatcher } from './feedback-batcher';
import { createMemoryStore } from './memory-store';
import { DeviceRegistry } from './registry';
import type { CoreStore, StoreStats } from './store';

export const CORE_DEFAULTS = {
  partitionCount: 4,
  retentionMs: 24 * 60 * 60 * 1000,
  defaultC2DTtlMs: 60 * 60 * 1000,
  feedbackBatchDelayMs: 15_000,
  maxC2DQueueDepth: 50,
  maxC2DDeliveryCount: 10,
} as const;

/** The core plus what tests and benchmarks look at; adapters only need `IotHubCore`. */
export interface InspectableCore extends IotHubCore {
  /** True when state survives a crash. */
  readonly durable: boolean;
  storeStats(): StoreStats;
}

function openStore(options: CoreOptions, partitionCount: number): Promise<CoreStore> {
  if (options.dataDir === undefined) return Promise.resolve(createMemoryStore());
  // TODO(E1): the durable store lands next; until then state is kept in memory.
  void partitionCount;
  console.warn(`core: durable store not implemented yet; ${options.dataDir} is not used`);
  return Promise.resolve(createMemoryStore());
}

export async function createCore(options: CoreOptions = {}): Promise<InspectableCore> {
  const clock = options.clock ?? new SystemClock();
  const partitionCount = options.partitionCount ?? CORE_DEFAULTS.partitionCount;
  const store = await openStore({ ...options, clock }, partitionCount);
  const recovered = store.recovered;

  // The registry and the queues refer to each other; the queues are created second.
  const late: { c2d?: C2DQueues } = {};
  const registry = new DeviceRegistry(
    {
      clock,
      store,
      purgeQueue: (deviceId, generationId) =>
        late.c2d ? late.c2d.purgeQueue(deviceId, generationId) : Promise.resolve(0),
      queueDepth: (deviceId) => late.c2d?.depth(deviceId) ?? 0,
    },
    recovered.devices,
  );
  const feedback = new FeedbackBatcher(
    clock,
    store,
    options.feedbackBatchDelayMs ?? CORE_DEFAULTS.feedbackBatchDelayMs,
    recovered.feedbackBatches,
    recovered.feedbackOpen,
  );
  const c2d = new C2DQueues(
    {
      clock,
      store,
      feedback,
      device: (deviceId) => registry.get(deviceId),
      defaultTtlMs: options.defaultC2DTtlMs ?? CORE_DEFAULTS.defaultC2DTtlMs,
      maxQueueDepth: options.maxC2DQueueDepth ?? CORE_DEFAULTS.maxC2DQueueDepth,
      maxDeliveryCount: options.maxC2DDeliveryCount ?? CORE_DEFAULTS.maxC2DDeliveryCount,
    },
    recovered.c2dMessages,
  );
  const d2c = new D2CPartitions(
    {
      clock,
      store,
      partitionCount,
      retentionMs: options.retentionMs ?? CORE_DEFAULTS.retentionMs,
    },
    recovered.events,
    recovered.nextSequenceNumbers,
  );
  late.c2d = c2d;
  let closing: Promise<void> | undefined;
  return {
    clock,
    registry,
    c2d,
    feedback,
    d2c,
    durable: store.durable,
    storeStats: () => store.stats(),
    close(): Promise<void> {
      closing ??= (async () => {
        c2d.dispose();
        feedback.dispose();
        await store.close();
      })();
      return closing;
    },
  };
}
