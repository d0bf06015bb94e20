/**
 * devhost HTTP overhead: requests/s and p99 latency of an anonymous `GET /api/health` through
 * devhost (the real `@azure/functions` library, routing, conversion) against a bare `node:http`
 * server answering the same JSON, both in their own process, measured with autocannon in the same
 * run. Target ratio (devhost / bare) ≥ 0.5 for requests/s. Then both at a fixed 1,000 req/s, open
 * loop (`bench/paced.ts`, issue 14): devhost's own p50/p99 at a load below saturation.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { httpGetter, measurePaced, type PacedResult } from './paced';
import type { Benchmark, BenchResult } from './results';

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as Autocannon;

const root = resolve(__dirname, '..', '..');
const durationSeconds = 5;
const connections = 20;
/** The fixed request rate of issue 14's `GET` latency target. */
const fixedRate = 1_000;

const bareServer = `
const http = require('node:http');
const body = JSON.stringify({ status: 'ok' });
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/health') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else { res.writeHead(404); res.end(); }
});
server.listen(0, '127.0.0.1', () => console.log('Host started: http://127.0.0.1:' + server.address().port));
`;

function startProcess(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, LOCAL_FUNCTION_KEY: '' },
    });
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`no start line from ${args.join(' ')}`)),
      30_000,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const url = /Host started: (http:\/\/\S+)/.exec(text)?.[1];
      if (url) {
        clearTimeout(timer);
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolveStart({ child, url });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited with ${String(code)}: ${text}`)));
  });
}

/** `npm start` after the build: spawn the stack on a fresh data folder until it reports healthy. */
async function stackColdStartMs(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'devhost-bench-stack-'));
  const started = performance.now();
  const child = spawn(process.execPath, [join(root, 'dist', 'devhost', 'stack', 'stack.js')], {
    env: { ...process.env, LOCAL_DATA_DIR: dataDir, LOCAL_STACK_EPHEMERAL_PORTS: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolveReady, reject) => {
      let text = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('The local stack is running.')) resolveReady();
      });
      child.on('exit', (code) =>
        reject(new Error(`the stack exited with ${String(code)}: ${text.slice(-2000)}`)),
      );
    });
    return performance.now() - started;
  } finally {
    await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** At `fixedRate`, open loop, after a short warm-up: the latency at a load the host carries. */
async function measureFixed(url: string): Promise<PacedResult> {
  const client = httpGetter(`${url}/api/health`);
  try {
    const seconds = { warmup: 1, measured: durationSeconds };
    return await measurePaced(url, fixedRate, seconds, client.get);
  } finally {
    client.close();
  }
}

function fixedRows(through: PacedResult, bare: PacedResult): BenchResult[] {
  const at = `GET /api/health at a fixed ${fixedRate} req/s, open loop`;
  const latency = (label: 'p50' | 'p99' | 'max'): BenchResult => ({
    benchmark: 'devhost',
    metric: `${at}: ${label} (baseline: bare node:http; ratio baseline/value)`,
    value: through[label],
    unit: 'ms',
    baseline: bare[label],
    ratio: bare[label] / Math.max(through[label], 1),
  });
  return [
    {
      benchmark: 'devhost',
      metric: `${at}: achieved rate (baseline: bare node:http)`,
      value: through.perSecond,
      unit: 'req/s',
      baseline: bare.perSecond,
      ratio: through.perSecond / bare.perSecond,
    },
    latency('p50'),
    latency('p99'),
    latency('max'),
  ];
}

async function measure(url: string): Promise<AutocannonResult> {
  // A short warm-up lets the JIT settle before the measured run.
  await autocannon({ url: `${url}/api/health`, connections, duration: 1 });
  const result = await autocannon({
    url: `${url}/api/health`,
    connections,
    duration: durationSeconds,
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

const benchmark: Benchmark = {
  name: 'devhost HTTP overhead (GET /api/health)',
  async run(): Promise<BenchResult[]> {
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-bench-'));
    const fixture = join(root, 'test', 'fixtures', 'devhost-app');
    const devhost = await startProcess([
      join(root, 'dist', 'devhost', 'host', 'cli.js'),
      '--app',
      fixture,
      '--port',
      '0',
      '--data',
      dataDir,
      '--log-level',
      'warning',
    ]);
    const bare = await startProcess(['-e', bareServer]);
    try {
      const baseline = await measure(bare.url);
      const through = await measure(devhost.url);
      const fixed = fixedRows(await measureFixed(devhost.url), await measureFixed(bare.url));
      const name = 'devhost';
      const coldStart = await stackColdStartMs();
      return [
        {
          benchmark: name,
          metric:
            'npm start cold start to healthy (fresh data folder, after build; target < 10000)',
          value: coldStart,
          unit: 'ms',
        },
        {
          benchmark: name,
          metric: 'GET /api/health requests/s',
          value: through.requests.average,
          unit: 'req/s',
          baseline: baseline.requests.average,
          ratio: through.requests.average / baseline.requests.average,
        },
        {
          benchmark: name,
          metric: 'GET /api/health p99 latency (ratio: baseline/value, higher is better)',
          value: through.latency.p99,
          unit: 'ms',
          baseline: baseline.latency.p99,
          ratio: baseline.latency.p99 / Math.max(through.latency.p99, 1),
        },
        ...fixed,
      ];
    } finally {
      await Promise.all([stop(devhost.child), stop(bare.child)]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

export default benchmark;
