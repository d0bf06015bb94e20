/**
 * Durable telemetry append throughput of the emulator core: many concurrent appenders (as many
 * devices publishing at once), each awaiting its append before sending the next, so every message
 * counted was durable when it completed (written to the OS, fdatasynced in the background: the
 * default `d2cSyncIntervalMs`). The baseline is the in-memory store in the same
 * run; the ratio shows what durability costs. Also reports fsyncs per 1,000 messages (group
 * commit at work) and the tail latency of one append.
 *
 * Then the store's share of issue 14's PUBACK latency in isolation: appends at a fixed
 * 2,000 msg/s (no closed loop, no network, no TLS), append → durable p50/p99, against two
 * baselines in the same run: the in-memory store at the same rate, and the disk's own floor —
 * one small write + fdatasync after another on the same file system. Measured in both sync modes:
 * the default and an fdatasync before every acknowledgement (`d2cSyncIntervalMs: 0`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
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
const FIXED_RATE = 2_000;
const FIXED_MS = 5_000;

interface Run {
  msgsPerSecond: number;
  /** This process's CPU time (user + system) per message: less sensitive to a busy machine. */
  cpuUsPerMessage: number;
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
  const cpuBefore = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpuBefore);
  const after = core.storeStats();
  latencies.sort((a, b) => a - b);
  const total = perAppender * appenders;
  return {
    msgsPerSecond: total / seconds,
    cpuUsPerMessage: (cpu.user + cpu.system) / total,
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
      metric: `durable append CPU per message, ${label} (baseline: in-memory; lower is better)`,
      value: durable.cpuUsPerMessage,
      unit: 'µs',
      baseline: memory.cpuUsPerMessage,
      ratio: durable.cpuUsPerMessage / memory.cpuUsPerMessage,
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

interface Latency {
  p50: number;
  p99: number;
}

function latencyOf(samples: number[]): Latency {
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

/** Appends at `FIXED_RATE` for `ms` (each timer tick sends what is due); append → durable. */
async function paced(core: InspectableCore, ms: number): Promise<Latency> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms) {
    const due = Math.floor(((performance.now() - start) * FIXED_RATE) / 1000);
    for (; sent < due; sent++) {
      const at = performance.now();
      const n = sent;
      pending.push(
        core.d2c.append(message(n % 100, n)).then(() => {
          latencies.push(performance.now() - at);
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  return latencyOf(latencies);
}

async function measurePaced(
  dataDir: string | undefined,
  d2cSyncIntervalMs?: number,
): Promise<Latency> {
  const core = await createCore({ dataDir, partitionCount: 4, d2cSyncIntervalMs });
  try {
    await paced(core, 1_000); // warm-up at the same rate
    return await paced(core, FIXED_MS);
  } finally {
    await core.close();
  }
}

/** The disk's floor: 300-byte appends, each written and fdatasynced before the next. */
async function syncFloor(dir: string): Promise<Latency> {
  const handle = await open(join(dir, 'floor.log'), 'a');
  const record = Buffer.alloc(300, 1);
  const latencies: number[] = [];
  try {
    const end = performance.now() + FIXED_MS;
    while (performance.now() < end) {
      const at = performance.now();
      await handle.write(record);
      await handle.datasync();
      latencies.push(performance.now() - at);
    }
  } finally {
    await handle.close();
  }
  return latencyOf(latencies);
}

async function fixedRate(): Promise<BenchResult[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'iothub-core-bench-'));
  try {
    const memory = await measurePaced(undefined);
    const durable = await measurePaced(dataDir);
    const strict = await measurePaced(join(dataDir, 'strict'), 0);
    const floor = await syncFloor(dataDir);
    const at = `at a fixed ${FIXED_RATE} msg/s`;
    const row = (metric: string, value: number, baseline: number): BenchResult => ({
      benchmark: NAME,
      metric,
      value,
      unit: 'ms',
      baseline,
      ratio: baseline > 0 ? value / baseline : undefined,
    });
    return [
      row(`durable append p50 ${at} (baseline: in-memory)`, durable.p50, memory.p50),
      row(`durable append p99 ${at} (baseline: in-memory)`, durable.p99, memory.p99),
      row(`durable append p50 ${at} (baseline: one write+fdatasync)`, durable.p50, floor.p50),
      row(`durable append p99 ${at} (baseline: one write+fdatasync)`, durable.p99, floor.p99),
      row(`fdatasync per append: p50 ${at} (baseline: one write+fdatasync)`, strict.p50, floor.p50),
      row(`fdatasync per append: p99 ${at} (baseline: one write+fdatasync)`, strict.p99, floor.p99),
    ];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const benchmark: Benchmark = {
  name: NAME,
  async run(): Promise<BenchResult[]> {
    // `BENCH_CORE_PART=fixed` or `=closed` runs one half (for quick A/B comparisons).
    const part = process.env.BENCH_CORE_PART;
    const all: BenchResult[] = part === 'closed' ? [] : await fixedRate();
    if (part === 'fixed') return all;
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
