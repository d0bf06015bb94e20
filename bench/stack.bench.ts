/**
 * The whole local stack (issue 5, "Performance"): what `npm start` runs after its build
 * (`node dist/devhost/stack/stack.js`: Azurite, the local IoT Hub, the app with the simulator under
 * devhost), on ephemeral loopback ports with a fresh data folder.
 *
 * 1. Cold start to healthy: spawn → the stack reports that it is running (it waits for
 *    `GET /api/health` = 200 itself); a fresh data folder, so the hub's CA is generated too.
 *    Target < 10 s. Also the restart on the same data folder at the end.
 * 2. `GET /api/devices/{id}` through devhost + the hub (autocannon, 20 connections): req/s and
 *    p99. Targets ≥ 1,000 req/s, p99 < 20 ms. Baseline, same run: the hub's own registry GET
 *    through the `azure-iothub` SDK (what the function calls), 20 in flight — the ceiling the API
 *    can reach; and `GET /api/openapi.json` through the same devhost (no back-end call), devhost's
 *    own ceiling in this setup. Then the route and the SDK's registry GET at a fixed 1,000 req/s,
 *    open loop (`bench/paced.ts`): the p99 at a load the stack carries, not at saturation
 *    (issue 14: < 10 ms).
 * 3. `POST /api/devices` with a unique id per request: req/s (target ≥ 200). Baseline: the
 *    SDK's registry create, 10 in flight.
 * 4. Telemetry end to end at ~1,000 msg/s from 10 SDK devices (MQTT) for 10 s: latency from the
 *    device's send to the reading stored in the `telemetry` table (the row's Azurite `Timestamp`,
 *    the moment it became readable through the API). Targets p50 < 300 ms, p99 < 1 s. Baseline:
 *    the hub's own PUBACK latency for the same messages. A 5 s run at 200 msg/s comes first: the
 *    latency without a backlog, and the stored rate shows whether the target rate is sustained.
 *
 * Bounded (about two minutes on a busy 2-core machine), loopback only. No timing is asserted;
 * figures go to `bench/results.json` through `npm run bench`.
 */
import { performance } from 'node:perf_hooks';
import { Message } from 'azure-iot-device';
import { Registry } from 'azure-iothub';
import { HostPortAgent } from '../lib/iothub/registry-agent';
import type { StackProcess, TestDevice } from '../test/e2e/support';
import {
  Api,
  asRecord,
  connectDevice,
  createStackDataDir,
  readTable,
  removeStackDataDir,
  startStackProcess,
  waitFor,
} from '../test/e2e/support';
import { httpGetter, measurePaced, type PacedResult } from './paced';
import { percentile, type Benchmark, type BenchResult } from './results';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as Autocannon;

const name = 'stack';
const getConnections = 20;
const getSeconds = 8;
/** The fixed request rate of issue 14's latency target (`GET /api/devices/{id}` p99 < 10 ms). */
const getFixedRate = 1_000;
const postConnections = 10;
const postSeconds = 5;
const warmupSeconds = 2;
const pacedWarmupSeconds = 5;
const telemetryDevices = 10;
const telemetryRate = 1_000;
const telemetrySeconds = 10;
/** A rate the stack sustains on a small machine, to show the latency without a backlog. */
const lowRate = 200;
const lowSeconds = 5;
/** Most sends awaiting their PUBACK before the pacer holds back (the rate then drops). */
const maxInFlight = 2_000;
const drainTimeoutMs = 60_000;

/** A registry client for the stack's hub that trusts its CA without NODE_EXTRA_CA_CERTS. */
function sdkRegistry(stack: StackProcess): Registry {
  const registry = Registry.fromConnectionString(stack.serviceConnectionString);
  // As lib/iothub/registry-agent.ts does (the SDK has no public option for an agent), plus the CA.
  const client = (
    registry as unknown as {
      _restApiClient: { setOptions(options: { http: { agent: HostPortAgent } }): void };
    }
  )._restApiClient;
  client.setOptions({ http: { agent: new HostPortAgent({ keepAlive: true, ca: stack.caPem }) } });
  return registry;
}

/** Runs `call` with `concurrency` in flight for `seconds`; req/s and latency percentiles (ms). */
async function closedLoop(
  concurrency: number,
  seconds: number,
  call: (i: number) => Promise<unknown>,
): Promise<{ perSecond: number; p50: number; p99: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await call((next += 1));
          latencies.push(performance.now() - t0);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
  };
}

async function load(
  options: { url: string; method?: string } & Record<string, unknown>,
): Promise<AutocannonResult> {
  const result = await autocannon(options);
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${options.method ?? 'GET'} ${options.url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  return result;
}

async function apiGet(stack: StackProcess, api: Api): Promise<BenchResult[]> {
  const created = await api.post('/devices', { deviceId: 'bench-get' });
  if (created.status !== 201) throw new Error(`POST /devices: HTTP ${created.status}`);
  const options = {
    url: `${stack.apiUrl}/devices/bench-get`,
    headers: { 'x-functions-key': stack.functionKey },
    connections: getConnections,
  };
  await load({ ...options, duration: warmupSeconds });
  const through = await load({ ...options, duration: getSeconds });
  // devhost's own ceiling in this setup: an anonymous route that calls nothing behind it.
  const ceiling = await load({
    url: `${stack.apiUrl}/openapi.json`,
    connections: getConnections,
    duration: warmupSeconds + 1,
  });

  const fixed = await fixedRateGet(stack);

  const registry = sdkRegistry(stack);
  await closedLoop(getConnections, warmupSeconds, () => registry.get('bench-get'));
  const base = await closedLoop(getConnections, getSeconds, () => registry.get('bench-get'));
  if (base.errors > 0) throw new Error(`registry GET baseline: ${base.errors} errors`);
  return [
    ...fixed,
    {
      benchmark: name,
      metric: 'GET /api/devices/{id} requests/s (baseline: hub registry GET via SDK)',
      value: through.requests.average,
      unit: 'req/s',
      baseline: base.perSecond,
      ratio: through.requests.average / base.perSecond,
    },
    {
      benchmark: name,
      metric: 'GET /api/devices/{id} requests/s (baseline: GET /api/openapi.json, no back end)',
      value: through.requests.average,
      unit: 'req/s',
      baseline: ceiling.requests.average,
      ratio: through.requests.average / ceiling.requests.average,
    },
    {
      benchmark: name,
      metric: 'GET /api/devices/{id} p99 latency (ratio: baseline/value, higher is better)',
      value: through.latency.p99,
      unit: 'ms',
      baseline: base.p99,
      ratio: base.p99 / Math.max(through.latency.p99, 1),
    },
  ];
}

/**
 * `GET /api/devices/{id}` at a fixed rate, open loop (`bench/paced.ts`): p50/p99 at a load below
 * saturation. Same-run baseline: the call the function makes, the hub's registry GET through the
 * `azure-iothub` SDK, at the same rate from this process.
 */
async function fixedRateGet(stack: StackProcess): Promise<BenchResult[]> {
  const device = httpGetter(`${stack.apiUrl}/devices/bench-get`, {
    'x-functions-key': stack.functionKey,
  });
  const registry = sdkRegistry(stack);
  // Longer than the other warm-ups: the app's CPU per request keeps falling for several seconds
  // at this rate as the JIT settles (probe, docs/benchmarks.md "Round 4").
  const seconds = { warmup: pacedWarmupSeconds, measured: getSeconds };
  try {
    const through = await measurePaced('GET /api/devices/{id}', getFixedRate, seconds, device.get);
    const base = await measurePaced('registry GET', getFixedRate, seconds, () =>
      registry.get('bench-get'),
    );
    return fixedRateRows(through, base);
  } finally {
    device.close();
  }
}

function fixedRateRows(through: PacedResult, base: PacedResult): BenchResult[] {
  const at = `at a fixed ${getFixedRate} req/s, open loop`;
  const row = (metric: string, value: number, baseline: number, unit = 'ms'): BenchResult => ({
    benchmark: name,
    metric,
    value,
    unit,
    baseline,
    ratio: unit === 'ms' ? baseline / Math.max(value, 1) : value / baseline,
  });
  const baseName = 'registry GET via SDK';
  return [
    row(
      `GET /api/devices/{id} ${at}: achieved rate (baseline: ${baseName})`,
      through.perSecond,
      base.perSecond,
      'req/s',
    ),
    row(`GET /api/devices/{id} ${at}: p50 (baseline: ${baseName})`, through.p50, base.p50),
    row(`GET /api/devices/{id} ${at}: p99 (baseline: ${baseName})`, through.p99, base.p99),
    row(`GET /api/devices/{id} ${at}: max (baseline: ${baseName})`, through.max, base.max),
    row(
      `GET /api/devices/{id} ${at}: the generator's own start lag p99 (baseline: during ${baseName})`,
      through.startLagP99,
      base.startLagP99,
    ),
  ];
}

async function apiCreate(stack: StackProcess): Promise<BenchResult[]> {
  // A fresh body per request (autocannon's `[<id>]` replacement sends a wrong content-length,
  // and the requests hang).
  let count = 0;
  const created = await load({
    url: `${stack.apiUrl}/devices`,
    method: 'POST',
    headers: { 'x-functions-key': stack.functionKey, 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request: Record<string, unknown>) => ({
          ...request,
          body: JSON.stringify({ deviceId: `bench-post-${(count += 1)}` }),
        }),
      },
    ],
    connections: postConnections,
    duration: postSeconds,
  });
  const registry = sdkRegistry(stack);
  const base = await closedLoop(postConnections, postSeconds, (i) =>
    registry.create({ deviceId: `bench-sdk-${i}` }),
  );
  if (base.errors > 0) throw new Error(`registry create baseline: ${base.errors} errors`);
  return [
    {
      benchmark: name,
      metric: 'POST /api/devices requests/s (baseline: hub registry create via SDK)',
      value: created.requests.average,
      unit: 'req/s',
      baseline: base.perSecond,
      ratio: created.requests.average / base.perSecond,
    },
  ];
}

interface BenchDevice {
  id: string;
  device: TestDevice;
}

/**
 * Sends tutorial readings round-robin from `devices` at `rate` msg/s for `seconds`, waits until
 * they are stored, and reports the send→stored latency. Message ids carry `label` so runs at
 * different rates do not mix.
 */
/** Sends tutorial readings round-robin from `devices`, remembering when each was sent. */
class TelemetrySender {
  readonly sentAt = new Map<string, number>();
  readonly ackMs: number[] = [];
  readonly lastSent = new Map<string, string>();
  inFlight = 0;
  failures = 0;
  sent = 0;
  private readonly pending: Promise<void>[] = [];

  constructor(
    private readonly devices: readonly BenchDevice[],
    private readonly label: string,
  ) {}

  sendOne(): void {
    const target = this.devices[this.sent % this.devices.length];
    if (!target) return;
    this.sent += 1;
    const messageId = `${this.label}-${this.sent}`;
    const message = new Message(JSON.stringify({ deviceId: target.id, windSpeed: 12.5 }));
    message.messageId = messageId;
    message.contentType = 'application/json';
    message.contentEncoding = 'utf-8';
    const t0 = Date.now();
    this.sentAt.set(messageId, t0);
    this.lastSent.set(target.id, messageId);
    this.inFlight += 1;
    this.pending.push(
      target.device.client.sendEvent(message).then(
        () => {
          this.inFlight -= 1;
          this.ackMs.push(Date.now() - t0);
        },
        () => {
          this.inFlight -= 1;
          this.failures += 1;
        },
      ),
    );
  }

  /** Every tick sends what is due at `rate` since the start; resolves once all are acknowledged. */
  async sendPaced(
    rate: number,
    seconds: number,
  ): Promise<{ started: number; sendSeconds: number }> {
    const started = Date.now();
    await new Promise<void>((done) => {
      const timer = setInterval(() => {
        const elapsed = Date.now() - started;
        const due = Math.min(rate * seconds, (elapsed * rate) / 1000);
        while (this.sent < due && this.inFlight < maxInFlight) this.sendOne();
        if (elapsed >= seconds * 1000) {
          clearInterval(timer);
          done();
        }
      }, 10);
    });
    const sendSeconds = (Date.now() - started) / 1000;
    await Promise.all(this.pending);
    return { started, sendSeconds };
  }
}

/** Device→stored latencies (ms) of what `sender` sent, once every device's last reading is in. */
async function storedLatencies(
  stack: StackProcess,
  sender: TelemetrySender,
  devices: readonly BenchDevice[],
): Promise<{ latencies: number[]; lastStored: number }> {
  // Each device's readings are processed in order (one partition): once its last reading is
  // the latest state, all of its readings are stored.
  const storage = stack.storageConnectionString;
  await waitFor(
    'the last reading of every benchmark device',
    async () => {
      const states = await readTable(storage, 'devicestate');
      const latest = new Map(states.map((s) => [String(s.deviceId), s.messageId]));
      return devices.every(({ id }) => latest.get(id) === sender.lastSent.get(id))
        ? true
        : undefined;
    },
    { timeoutMs: drainTimeoutMs, intervalMs: 250 },
  ).catch(() => undefined);
  const latencies: number[] = [];
  let lastStored = 0;
  for (const { id } of devices) {
    for (const row of await readTable(storage, 'telemetry', id)) {
      const sent = sender.sentAt.get(String(row.messageId));
      const stored = Date.parse(String(row.timestamp));
      if (sent === undefined || !Number.isFinite(stored)) continue;
      latencies.push(stored - sent);
      lastStored = Math.max(lastStored, stored);
    }
  }
  latencies.sort((a, b) => a - b);
  return { latencies, lastStored };
}

function telemetryRows(
  at: string,
  sender: TelemetrySender,
  sendSeconds: number,
  storedSeconds: number,
  latencies: readonly number[],
): BenchResult[] {
  const ackMs = [...sender.ackMs].sort((a, b) => a - b);
  const compared = (q: number, label: string): BenchResult => ({
    benchmark: name,
    metric: `telemetry ${at}: device→stored ${label} (baseline: hub PUBACK ${label}; ratio baseline/value)`,
    value: percentile(latencies, q),
    unit: 'ms',
    baseline: percentile(ackMs, q),
    ratio: percentile(ackMs, q) / Math.max(percentile(latencies, q), 1),
  });
  const rows: BenchResult[] = [
    {
      benchmark: name,
      metric: `telemetry ${at}: send rate achieved`,
      value: sender.sent / sendSeconds,
      unit: 'msg/s',
    },
    {
      benchmark: name,
      metric: `telemetry ${at}: stored rate (first send to last reading stored)`,
      value: latencies.length / Math.max(storedSeconds, 0.001),
      unit: 'msg/s',
    },
    compared(0.5, 'p50'),
    compared(0.99, 'p99'),
    {
      benchmark: name,
      metric: `telemetry ${at}: readings stored within ${drainTimeoutMs / 1000} s of the last send`,
      value: (100 * latencies.length) / Math.max(sender.sent, 1),
      unit: '%',
    },
  ];
  if (sender.failures > 0) {
    rows.push({
      benchmark: name,
      metric: `telemetry ${at}: sends failed`,
      value: sender.failures,
      unit: '',
    });
  }
  return rows;
}

async function pacedTelemetry(
  stack: StackProcess,
  devices: readonly BenchDevice[],
  rate: number,
  seconds: number,
  label: string,
): Promise<BenchResult[]> {
  const sender = new TelemetrySender(devices, label);
  const { started, sendSeconds } = await sender.sendPaced(rate, seconds);
  const { latencies, lastStored } = await storedLatencies(stack, sender, devices);
  const storedSeconds = (Math.max(lastStored, started) - started) / 1000;
  return telemetryRows(`at ${rate} msg/s`, sender, sendSeconds, storedSeconds, latencies);
}

/** A sustainable rate first (the latency floor), then the target rate. */
async function telemetry(stack: StackProcess, api: Api): Promise<BenchResult[]> {
  const devices: BenchDevice[] = [];
  try {
    for (let d = 0; d < telemetryDevices; d += 1) {
      const id = `bench-telemetry-${d}`;
      const created = await api.post('/devices', { deviceId: id });
      if (created.status !== 201) throw new Error(`POST /devices: HTTP ${created.status}`);
      const connectionString = String(asRecord(created.body).connectionString);
      devices.push({ id, device: await connectDevice(connectionString, stack.caPem) });
    }
    return [
      ...(await pacedTelemetry(stack, devices, lowRate, lowSeconds, 'low')),
      ...(await pacedTelemetry(stack, devices, telemetryRate, telemetrySeconds, 'target')),
    ];
  } finally {
    await Promise.all(devices.map(({ device }) => device.close()));
  }
}

/**
 * `STACK_BENCH_PARTS=telemetry` (comma-separated: get, post, telemetry) runs only those parts,
 * e.g. to compare telemetry changes in interleaved runs; all of them by default.
 */
function runs(part: 'get' | 'post' | 'telemetry'): boolean {
  const parts = process.env.STACK_BENCH_PARTS;
  return parts === undefined || parts === '' || parts.split(',').includes(part);
}

const benchmark: Benchmark = {
  name: 'local stack (cold start, API through devhost + hub, telemetry end to end)',
  async run(): Promise<BenchResult[]> {
    const dataDir = createStackDataDir('stack-bench-');
    let stack: StackProcess | undefined;
    try {
      // The stack's own defaults, as `npm start` runs it (the simulator included).
      const t0 = performance.now();
      stack = await startStackProcess(dataDir);
      const coldMs = performance.now() - t0;
      const api = new Api(stack.apiUrl, stack.functionKey);

      const results: BenchResult[] = [
        {
          benchmark: name,
          metric: 'cold start to healthy, fresh data folder (target < 10 s)',
          value: coldMs / 1000,
          unit: 's',
        },
      ];
      if (runs('get')) results.push(...(await apiGet(stack, api)));
      if (runs('post')) results.push(...(await apiCreate(stack)));
      if (runs('telemetry')) results.push(...(await telemetry(stack, api)));

      const exitCode = await stack.stop();
      stack = undefined;
      if (exitCode !== 0) throw new Error(`the stack exited with ${String(exitCode)}`);
      const t1 = performance.now();
      stack = await startStackProcess(dataDir);
      results.push({
        benchmark: name,
        metric: 'restart to healthy, same data folder',
        value: (performance.now() - t1) / 1000,
        unit: 's',
      });
      return results;
    } finally {
      await stack?.stop();
      removeStackDataDir(dataDir);
    }
  },
};

export default benchmark;
