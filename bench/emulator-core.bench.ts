/**
 * Durable telemetry append throughput of the emulator core: many concurrent appenders (as many
 * devices publishing at once), each awaiting its append before sending the next, so every message
 * counted was durable (fsynced) when it completed. The baseline is the in-memory store in the same
 * run; the ratio shows what durability costs. Also reports fsyncs per 1,000 messages (group
 * commit at work) and the tail latency of one append.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { InspectableCore, TelemetryInput } from '@iot-hub-functions/local-iothub';
import { createCore } from '@iot-hub-functions/local-iothub';
import { percentile, type Benchmark, type BenchResult } from './results';

/** Closed-loop appenders (like devices with one unacknowledged message each). */
const CONCURRENCY = [100, 1000];
const MESSAGES = 100_000;
const NAME = 'emulator-core';

interface Run {
  msgsPerSecond: number;
  flushesPer1000: number;
  p99Ms: number;
}

function message(device: number, n: number): TelemetryInput {
  const body = JSON.stringify({ deviceId: `device-${device}`, windSpeed: 10 + (n % 7) * 0.5 });
  return {
    deviceId: `device-${device}`,
    body: Buffer.from(body),
    properties: { temperatureAlert: n % 5 === 0 ? 'true' : 'false' },
    messageId: `${device}-${n}`,
    correlationId: `c-${n}`,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    generationId: '638000000000000000',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  };
}

async function drive(core: InspectableCore, appenders: number): Promise<Run> {
  const perAppender = Math.ceil(MESSAGES / appenders);
  const latencies: number[] = [];
  const before = core.storeStats();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: appenders }, async (_, device) => {
      for (let n = 0; n < perAppender; n++) {
        const sent = performance.now();
        await core.d2c.append(message(device, n));
        latencies.push(performance.now() - sent);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const after = core.storeStats();
  latencies.sort((a, b) => a - b);
  const total = perAppender * appenders;
  return {
    msgsPerSecond: total / seconds,
    flushesPer1000: ((after.eventFlushes - before.eventFlushes) * 1000) / total,
    p99Ms: percentile(latencies, 0.99),
  };
}

async function measure(dataDir: string | undefined, appenders: number): Promise<Run> {
  const core = await createCore({ dataDir, partitionCount: 4 });
  try {
    await drive(core, appenders); // warm-up: JIT, file creation
    return await drive(core, appenders);
  } finally {
    await core.close();
  }
}

function results(appenders: number, memory: Run, durable: Run): BenchResult[] {
  const label = `${appenders} concurrent appenders`;
  return [
    {
      benchmark: NAME,
      metric: `durable append throughput, ${label} (baseline: in-memory store)`,
      value: durable.msgsPerSecond,
      unit: 'msg/s',
      baseline: memory.msgsPerSecond,
      ratio: durable.msgsPerSecond / memory.msgsPerSecond,
    },
    {
      benchmark: NAME,
      metric: `durable fsyncs per 1,000 messages, ${label}`,
      value: durable.flushesPer1000,
      unit: 'fsync',
    },
    {
      benchmark: NAME,
      metric: `durable append p99 latency, ${label} (baseline: in-memory; ratio lower is better)`,
      value: durable.p99Ms,
      unit: 'ms',
      baseline: memory.p99Ms,
      ratio: memory.p99Ms > 0 ? durable.p99Ms / memory.p99Ms : undefined,
    },
  ];
}

const benchmark: Benchmark = {
  name: NAME,
  async run(): Promise<BenchResult[]> {
    const all: BenchResult[] = [];
    for (const appenders of CONCURRENCY) {
      const dataDir = mkdtempSync(join(tmpdir(), 'iothub-core-bench-'));
      try {
        const memory = await measure(undefined, appenders);
        const durable = await measure(dataDir, appenders);
        all.push(...results(appenders, memory, durable));
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
    return all;
  },
};

export default benchmark;
