/**
 * Assembles the core: picks the store (durable when `dataDir` is given, in memory otherwise —
 * the one place that choice is made), recovers state from it, and wires the components.
 */
import { C2DQueues } from './c2d-queues';
import { SystemClock } from './clock';
import type { CoreOptions, IotHubCore } from './contracts';
import { D2CPartitions } from './d2c-partitions';
import type { DurableStoreOptions } from './durable-store';
import { openDurableStore } from './durable-store';
import { FeedbackBatcher } from './feedback-batcher';
import { createMemoryStore } from './memory-store';
import { DeviceMethods } from './direct-methods';
import { DeviceRegistry } from './registry';
import type { CoreStore, StoreStats } from './store';
import { DeviceTwins } from './twins';

export const CORE_DEFAULTS = {
  partitionCount: 4,
  retentionMs: 24 * 60 * 60 * 1000,
  defaultC2DTtlMs: 60 * 60 * 1000,
  feedbackBatchDelayMs: 15_000,
  maxC2DQueueDepth: 50,
  maxC2DDeliveryCount: 10,
  d2cSyncIntervalMs: 100,
} as const;

/** The core plus what tests and benchmarks look at; adapters only need `IotHubCore`. */
export interface InspectableCore extends IotHubCore {
  /** True when state survives a crash. */
  readonly durable: boolean;
  storeStats(): StoreStats;
}

/** Options beyond the contract's, for tests and benchmarks. */
export interface CreateCoreOptions extends CoreOptions {
  /** Durable store limits (segment size, compaction threshold) and where it reports recovery. */
  storeTuning?: Pick<DurableStoreOptions, 'segmentBytes' | 'compactStateBytes' | 'warn'>;
  /** Bytes of recent telemetry cached per partition by a durable hub (default 1 MiB). */
  d2cCacheBytes?: number;
}

function openStore(options: CreateCoreOptions, partitionCount: number): Promise<CoreStore> {
  if (options.dataDir === undefined) return Promise.resolve(createMemoryStore());
  return openDurableStore({
    dataDir: options.dataDir,
    partitionCount,
    clock: options.clock ?? new SystemClock(),
    retentionMs: options.retentionMs ?? CORE_DEFAULTS.retentionMs,
    eventSyncIntervalMs: options.d2cSyncIntervalMs ?? CORE_DEFAULTS.d2cSyncIntervalMs,
    ...options.storeTuning,
  });
}

export async function createCore(options: CreateCoreOptions = {}): Promise<InspectableCore> {
  const clock = options.clock ?? new SystemClock();
  const partitionCount = options.partitionCount ?? CORE_DEFAULTS.partitionCount;
  const store = await openStore({ ...options, clock }, partitionCount);
  const recovered = store.recovered;

  // The registry and the queues refer to each other; the queues are created second.
  const late: { c2d?: C2DQueues; twins?: DeviceTwins } = {};
  const registry = new DeviceRegistry(
    {
      clock,
      store,
      purgeQueue: (deviceId, generationId) =>
        late.c2d ? late.c2d.purgeQueue(deviceId, generationId) : [],
      queueDepth: (deviceId) => late.c2d?.depth(deviceId) ?? 0,
      forgetTwin: (deviceId) => late.twins?.forget(deviceId),
    },
    recovered.devices,
  );
  const twins = new DeviceTwins({ clock, store, registry }, recovered.twins);
  late.twins = twins;
  const methods = new DeviceMethods(clock, registry);
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
      cacheBytesPerPartition: options.d2cCacheBytes,
    },
    recovered.nextSequenceNumbers,
  );
  late.c2d = c2d;
  let closing: Promise<void> | undefined;
  return {
    clock,
    registry,
    twins,
    methods,
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
