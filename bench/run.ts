/**
 * `npm run bench`: runs every compiled `bench/*.bench.js` (or only those whose file name
 * contains one of the command-line arguments), prints a table and writes `bench/results.json`.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Benchmark, BenchResult } from './results';
import { writeResults } from './results';

function isBenchmark(value: unknown): value is Benchmark {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Benchmark).name === 'string' &&
    typeof (value as Benchmark).run === 'function'
  );
}

function format(n: number | undefined): string {
  if (n === undefined) return '';
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2);
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort();
  if (files.length === 0) {
    console.log('no benchmarks yet');
    return;
  }
  const all: BenchResult[] = [];
  for (const file of files) {
    const mod = (await import(join(__dirname, file))) as { default?: unknown };
    if (!isBenchmark(mod.default)) throw new Error(`${file} does not default-export a Benchmark`);
    console.log(`== ${mod.default.name}`);
    const results = await mod.default.run();
    all.push(...results);
  }
  console.table(
    all.map((r) => ({
      benchmark: r.benchmark,
      metric: r.metric,
      value: format(r.value),
      unit: r.unit,
      baseline: format(r.baseline),
      ratio: format(r.ratio),
    })),
  );
  const out = writeResults(all, resolve(__dirname, '..', '..', 'bench'));
  console.log(`wrote ${out}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
