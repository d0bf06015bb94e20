/** The shape every benchmark reports, and where `npm run bench` collects it. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchResult {
  benchmark: string;
  metric: string;
  value: number;
  unit: string;
  /** The same metric for the baseline measured in the same run. */
  baseline?: number;
  /** value / baseline (or the inverse where lower is better — say so in the metric name). */
  ratio?: number;
}

/** A benchmark module (`bench/*.bench.ts`) default-exports one of these. */
export interface Benchmark {
  name: string;
  run(): Promise<BenchResult[]>;
}

export function writeResults(results: readonly BenchResult[], dir: string): string {
  const file = join(dir, 'results.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** Nearest-rank percentile of values sorted ascending; `q` in [0, 1]; NaN when there are none. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}
