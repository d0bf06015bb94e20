/**
 * A diagnostic preload for profiling a benchmark's server process (issue 14: "profile first"):
 * `node --require dist/bench/probe.js …` with `BENCH_PROBE_OUT=<file>` appends one JSON line per
 * second to that file with the event loop's delay percentiles, GC pauses, CPU time, RSS and the
 * durations of file writes and fdatasyncs (the group commit's disk share), all measured inside
 * the process. It changes nothing the process does; the benchmarks start it only when asked
 * (`BENCH_PROBE=1`), so normal runs carry no probe overhead.
 */
import { appendFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const outFile = process.env.BENCH_PROBE_OUT;

/** Durations (ms) collected during the current second. */
class Window {
  values: number[] = [];

  add(ms: number): void {
    this.values.push(ms);
  }

  take(): { n: number; p50: number; p99: number; max: number; total: number } {
    const sorted = this.values.sort((a, b) => a - b);
    this.values = [];
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return {
      n: sorted.length,
      p50: round(at(0.5) ?? 0),
      p99: round(at(0.99) ?? 0),
      max: round(sorted[sorted.length - 1] ?? 0),
      total: round(sorted.reduce((a, b) => a + b, 0)),
    };
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

const gc = new Window();
const datasync = new Window();
const write = new Window();

/** Wraps a FileHandle method so each call's duration lands in `into`. */
function timeMethod(proto: Record<string, unknown>, name: string, into: Window): void {
  const original = proto[name] as (...args: unknown[]) => Promise<unknown>;
  proto[name] = function timed(this: unknown, ...args: unknown[]) {
    const start = performance.now();
    return original.apply(this, args).finally(() => into.add(performance.now() - start));
  };
}

async function patchFileHandle(): Promise<void> {
  const handle = await open('/dev/null', 'r');
  const proto = Object.getPrototypeOf(handle) as Record<string, unknown>;
  await handle.close();
  timeMethod(proto, 'datasync', datasync);
  timeMethod(proto, 'write', write);
}

function startProbe(file: string): void {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gc.add(entry.duration);
  }).observe({ entryTypes: ['gc'] });
  void patchFileHandle();
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const line = {
      t: Date.now(),
      cpuMs: round((used.user + used.system) / 1000),
      rssMb: round(memory.rss / 1048576),
      // Which part of the resident set grows: V8's heap (reserved and used) or Buffers.
      heapTotalMb: round(memory.heapTotal / 1048576),
      heapUsedMb: round(memory.heapUsed / 1048576),
      externalMb: round(memory.external / 1048576),
      loopP50: round(loop.percentile(50) / 1e6),
      loopP99: round(loop.percentile(99) / 1e6),
      loopMax: round(loop.max / 1e6),
      gc: gc.take(),
      datasync: datasync.take(),
      write: write.take(),
    };
    loop.reset();
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 1000);
  timer.unref();
}

if (outFile) startProbe(outFile);
