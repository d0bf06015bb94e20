/**
 * The telemetry processor (issue 4 "Performance"):
 *
 * 1. CPU: decode + validate + enrich (`prepareBatch`, storage excluded) over batches of 100
 *    IoT Hub-shaped events (tutorial bodies as bytes, real-host trigger metadata), against a
 *    baseline measured in the same run over the same bodies: bare `JSON.parse`. Targets:
 *    ≥ 100,000 events/s on one core, ratio ≥ 0.3.
 * 2. Storage: the same batches persisted to Azurite through the production table store —
 *    events/s and storage round trips per batch (10 devices per batch; the first batch also reads
 *    each device's state, later ones use the cached etag).
 */
import { performance } from 'node:perf_hooks';
import { TableEntityStore } from '../lib/storage/table-entity-store';
import { prepareBatch, TelemetryProcessor } from '../lib/telemetry/processor';
import { sampleBatch, tutorialEvents, type SampleBatch } from '../lib/telemetry/sample-events';
import { startAzurite } from '../test/support/azurite';
import type { Benchmark, BenchResult } from './results';

const NAME = 'telemetry';
const BATCH_SIZE = 100;
const DEVICES_PER_BATCH = 10;
const CPU_BATCHES = 50;
const CPU_WARMUP_ROUNDS = 20;
const CPU_ROUNDS = 300;
const STORAGE_BATCHES = 40;

function batches(count: number, firstSequence = 0): SampleBatch[] {
  const start = Date.parse('2026-11-23T08:00:00Z');
  return Array.from({ length: count }, (_, b) =>
    sampleBatch(
      tutorialEvents({
        count: BATCH_SIZE,
        devices: DEVICES_PER_BATCH,
        start: new Date(start + (firstSequence + b * BATCH_SIZE) * 10),
        firstSequenceNumber: firstSequence + b * BATCH_SIZE,
      }),
      String(b % 4),
    ),
  );
}

/** Milliseconds `work` takes over every batch once. */
function time(work: (batch: SampleBatch) => void, input: readonly SampleBatch[]): number {
  const started = performance.now();
  for (const batch of input) work(batch);
  return performance.now() - started;
}

function cpu(): BenchResult[] {
  const input = batches(CPU_BATCHES);
  const limits = { deadLetterMaxBodyBytes: 4096 };
  let sink = 0;
  const baseline = (batch: SampleBatch): void => {
    for (const body of batch.messages) {
      const value = JSON.parse((body as Buffer).toString('utf8')) as { windSpeed: number };
      sink += value.windSpeed;
    }
  };
  const processor = (batch: SampleBatch): void => {
    const prepared = prepareBatch(batch.messages, batch.triggerMetadata, limits, Date.now());
    if (prepared.letters.length > 0) throw new Error('benchmark input must be valid');
    sink += prepared.records.length;
  };
  for (let round = 0; round < CPU_WARMUP_ROUNDS; round += 1) {
    time(baseline, input);
    time(processor, input);
  }
  // Short alternating rounds: on a busy machine, interference then hits both sides alike.
  let baselineMs = 0;
  let processorMs = 0;
  for (let round = 0; round < CPU_ROUNDS; round += 1) {
    baselineMs += time(baseline, input);
    processorMs += time(processor, input);
  }
  if (sink === 0) throw new Error('unreachable: keeps the work observable');
  const events = CPU_ROUNDS * CPU_BATCHES * BATCH_SIZE;
  const ours = events / (processorMs / 1000);
  const base = events / (baselineMs / 1000);
  return [
    {
      benchmark: NAME,
      metric: 'decode+validate+enrich events/s (batches of 100; baseline: bare JSON.parse)',
      value: ours,
      unit: 'events/s',
      baseline: base,
      ratio: ours / base,
    },
  ];
}

async function storage(): Promise<BenchResult[]> {
  const azurite = await startAzurite();
  try {
    const store = TableEntityStore.fromSettings({
      kind: 'connectionString',
      connectionString: azurite.connectionString,
    });
    const processor = new TelemetryProcessor(store, {
      alertThreshold: 15,
      deadLetterMaxBodyBytes: 4096,
    });
    // Create the tables and warm the connection outside the measurement.
    const [warmup, ...input] = batches(STORAGE_BATCHES + 1, 1_000_000);
    if (warmup) await processor.processBatch(warmup.messages, warmup.triggerMetadata);
    const roundTrips: number[] = [];
    let events = 0;
    const started = performance.now();
    for (const batch of input) {
      const summary = await processor.processBatch(batch.messages, batch.triggerMetadata);
      if (summary.stored !== BATCH_SIZE)
        throw new Error(`stored ${summary.stored} of ${BATCH_SIZE}`);
      roundTrips.push(summary.roundTrips);
      events += summary.events;
    }
    const seconds = (performance.now() - started) / 1000;
    const meanRoundTrips = roundTrips.reduce((a, b) => a + b, 0) / roundTrips.length;
    return [
      {
        benchmark: NAME,
        metric: `events/s persisted to Azurite (batches of ${BATCH_SIZE}, ${DEVICES_PER_BATCH} devices each)`,
        value: events / seconds,
        unit: 'events/s',
      },
      {
        benchmark: NAME,
        metric: `storage round trips per batch of ${BATCH_SIZE} events, ${DEVICES_PER_BATCH} devices (lower is better)`,
        value: meanRoundTrips,
        unit: 'round trips',
        // One request per event would be the naive design.
        baseline: BATCH_SIZE,
        ratio: meanRoundTrips / BATCH_SIZE,
      },
    ];
  } finally {
    await azurite.stop();
  }
}

const benchmark: Benchmark = {
  name: NAME,
  async run() {
    return [...cpu(), ...(await storage())];
  },
};

export default benchmark;
