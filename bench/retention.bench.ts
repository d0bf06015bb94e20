/**
 * Retained-volume memory and restart time of the local IoT Hub's durable core. A child process
 * fills a data folder with N telemetry events of 200 bytes (durable appends, 4 partitions); then
 * a fresh child opens the folder, times open-to-serving (the core created, the newest and the
 * oldest event read back), and reports its RSS after a GC. The baseline is the same child on an
 * empty data folder, in the same run. Separate processes, so nothing of the fill stays resident.
 * Also times a restart as after a crash: the newest segment's saved index removed, so it is
 * scanned (at most one segment, 64 MiB by default). Last, a reader reads every retained event
 * from the beginning (from disk) and the RSS is taken again. The filling hub's own RSS at the end
 * (all events retained, still running) is reported too.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { InspectableCore } from '@iot-hub-functions/local-iothub';
import { createCore } from '@iot-hub-functions/local-iothub';
import type { Benchmark, BenchResult } from './results';

const NAME = 'retention';
/** Retained volumes to measure; `RETENTION_BENCH_EVENTS=200000,2000000` overrides. */
const VOLUMES = (process.env.RETENTION_BENCH_EVENTS ?? '200000,2000000')
  .split(',')
  .map((n) => Number(n));
const BODY = Buffer.alloc(200, 'x');

interface Opened {
  rssMb: number;
  openMs: number;
  /** After that, a reader from the beginning read every retained event (`scan` mode only). */
  scanRssMb?: number;
  scanEventsPerSecond?: number;
}

/** Appends `count` events; reports the RSS (after a GC) of the hub still holding them. */
async function fill(dataDir: string, count: number): Promise<{ rssMb: number }> {
  const core = await createCore({ dataDir, partitionCount: 4 });
  const appenders = 200;
  let next = 0;
  await Promise.all(
    Array.from({ length: appenders }, async (_, device) => {
      while (next < count) {
        next++;
        await core.d2c.append({
          deviceId: `device-${device}`,
          body: BODY,
          properties: {},
          generationId: '638000000000000000',
          authMethod: '{"scope":"device","type":"sas","issuer":"iothub"}',
        });
      }
    }),
  );
  (globalThis as { gc?: () => void }).gc?.();
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  await core.close();
  return { rssMb };
}

/** Reads every partition from its beginning in batches of 256, as a consumer far behind does. */
function scanAll(core: InspectableCore): number {
  let events = 0;
  for (const id of core.d2c.partitionIds) {
    let from = core.d2c.info(id).beginSequenceNumber;
    for (;;) {
      const batch = core.d2c.read(id, from, 256);
      if (batch.length === 0) break;
      events += batch.length;
      from = batch[batch.length - 1]!.sequenceNumber + 1;
    }
  }
  return events;
}

async function open(dataDir: string, scan: boolean): Promise<Opened> {
  const start = performance.now();
  const core = await createCore({ dataDir, partitionCount: 4 });
  // Serving: the newest and the oldest retained event of every partition can be read.
  for (const id of core.d2c.partitionIds) {
    const info = core.d2c.info(id);
    if (!info.isEmpty) {
      core.d2c.read(id, info.lastEnqueuedSequenceNumber, 1);
      core.d2c.read(id, info.beginSequenceNumber, 1);
    }
  }
  const openMs = performance.now() - start;
  (globalThis as { gc?: () => void }).gc?.();
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  const opened: Opened = { rssMb, openMs };
  if (scan) {
    const scanStart = performance.now();
    const events = scanAll(core);
    opened.scanEventsPerSecond = events / ((performance.now() - scanStart) / 1000);
    (globalThis as { gc?: () => void }).gc?.();
    opened.scanRssMb = process.memoryUsage().rss / 1024 / 1024;
  }
  await core.close();
  return opened;
}

/** Runs `mode` in a child process with its own heap; resolves with what it reports. */
function child<T>(mode: 'fill' | 'open' | 'scan', dataDir: string, count = 0): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const proc = fork(__filename, [mode, dataDir, String(count)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: T | undefined;
    proc.on('message', (message) => (result = message as T));
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0 ? resolve(result as T) : reject(new Error(`${mode} child exited ${code}`)),
    );
  });
}

function results(count: number, empty: Opened, full: Opened): BenchResult[] {
  const label = `${count.toLocaleString('en-US')} retained events of 200 B`;
  return [
    {
      benchmark: NAME,
      metric: `RSS after restart, ${label} (baseline: empty hub)`,
      value: full.rssMb,
      unit: 'MB',
      baseline: empty.rssMb,
      ratio: full.rssMb / empty.rssMb,
    },
    {
      benchmark: NAME,
      metric: `RSS growth over an empty hub, ${label}`,
      value: full.rssMb - empty.rssMb,
      unit: 'MB',
    },
    {
      benchmark: NAME,
      metric: `RSS after a reader read all ${label} from the beginning (baseline: empty hub)`,
      value: full.scanRssMb ?? Number.NaN,
      unit: 'MB',
      baseline: empty.rssMb,
      ratio: (full.scanRssMb ?? Number.NaN) / empty.rssMb,
    },
    {
      benchmark: NAME,
      metric: `read rate from disk, a reader from the beginning of ${label}`,
      value: full.scanEventsPerSecond ?? Number.NaN,
      unit: 'events/s',
    },
    {
      benchmark: NAME,
      metric: `restart to serving, ${label} (baseline: empty hub; ratio lower is better)`,
      value: full.openMs,
      unit: 'ms',
      baseline: empty.openMs,
      ratio: full.openMs / empty.openMs,
    },
  ];
}

function dropNewestIndex(dataDir: string): void {
  const store = join(dataDir, 'store');
  const newest = readdirSync(store)
    .filter((n) => /^index-d2c-\d+\.json$/.test(n))
    .sort()
    .at(-1);
  if (newest) rmSync(join(store, newest));
}

function crashResult(count: number, empty: Opened, crashed: Opened): BenchResult {
  return {
    benchmark: NAME,
    metric: `restart to serving after a crash (newest segment rescanned), ${count.toLocaleString('en-US')} retained events (baseline: empty hub; ratio lower is better)`,
    value: crashed.openMs,
    unit: 'ms',
    baseline: empty.openMs,
    ratio: crashed.openMs / empty.openMs,
  };
}

const benchmark: Benchmark = {
  name: NAME,
  async run(): Promise<BenchResult[]> {
    const all: BenchResult[] = [];
    for (const count of VOLUMES) {
      const emptyDir = mkdtempSync(join(tmpdir(), 'iothub-retention-empty-'));
      const fullDir = mkdtempSync(join(tmpdir(), 'iothub-retention-full-'));
      try {
        const fillStart = performance.now();
        const filled = await child<{ rssMb: number }>('fill', fullDir, count);
        console.log(
          `filled ${count} events in ${((performance.now() - fillStart) / 1000).toFixed(1)} s`,
        );
        const empty = await child<Opened>('open', emptyDir);
        // As after a crash: the segment that was active has no saved index and is scanned.
        dropNewestIndex(fullDir);
        const crashed = await child<Opened>('open', fullDir);
        const full = await child<Opened>('scan', fullDir);
        all.push(...results(count, empty, full), crashResult(count, empty, crashed), {
          benchmark: NAME,
          metric: `RSS of the running hub that appended ${count.toLocaleString('en-US')} events (baseline: empty hub)`,
          value: filled.rssMb,
          unit: 'MB',
          baseline: empty.rssMb,
          ratio: filled.rssMb / empty.rssMb,
        });
      } finally {
        rmSync(emptyDir, { recursive: true, force: true });
        rmSync(fullDir, { recursive: true, force: true });
      }
    }
    return all;
  },
};

export default benchmark;

if (require.main === module && process.send) {
  const [mode, dataDir, count] = process.argv.slice(2);
  const work = mode === 'fill' ? fill(dataDir!, Number(count)) : open(dataDir!, mode === 'scan');
  work.then(
    (result) => process.send!(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
