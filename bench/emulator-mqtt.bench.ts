/**
 * The local IoT Hub under device load (issue 3, "Performance"): 100 devices over MQTT/TLS send
 * QoS 1 telemetry as fast as PUBACKs allow into the emulator in durable mode (a temp data
 * folder, run as a child process exactly as users run it); one `@azure/event-hubs` consumer
 * reads all partitions. Reported: end-to-end messages/s, send→receive latency (saturated, and
 * paced at 2,000 msg/s), the emulator's peak RSS, its RSS holding 1,000 idle connections, and its
 * CPU per event served to a consumer reading a backlog (the Event Hub side alone).
 *
 * Baseline, same run, same machine: a bare aedes broker over TLS (this file started with
 * `--bare-broker`, also a child process) relaying the same load from the same mqtt.js
 * publishers to one mqtt.js subscriber — the cost of MQTT and TLS alone, without IoT Hub's
 * rules, durable storage and the Event Hub hop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { EventHubConsumerClient, earliestEventPosition } from '@azure/event-hubs';
import type { ConnectionInfo } from '@iot-hub-functions/local-iothub';
import { launchHub } from '@iot-hub-functions/local-iothub';
import { Aedes } from 'aedes';
import { SharedAccessSignature as ServiceSas } from 'azure-iot-common';
import { SharedAccessSignature as DeviceSas } from 'azure-iot-device';
import mqtt, { type MqttClient } from 'mqtt';
import { percentile, type Benchmark, type BenchResult } from './results';

const deviceCount = 100;
const idleDeviceCount = 1000;
/** QoS 1 publishes each device keeps unacknowledged while saturating. */
const window = 10;
const warmupMs = 1_000;
const saturateMs = 10_000;
const pacedRate = 2_000;
const pacedMs = 5_000;
/** How long to wait for the last acknowledged messages to reach the receiver. */
const drainTimeoutMs = 30_000;
/** How long the devices publish, saturating, with no consumer: the backlog read afterwards. */
const backlogMs = 3_000;
const benchmark = 'emulator-mqtt';

type ConnectionFile = ConnectionInfo;

interface ChildServer {
  pid: number | undefined;
  stop(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Node flags for the server processes: with `BENCH_PROBE=<dir>` each writes a CPU profile and a
 * per-second probe log (`probe.ts`) into `<dir>`, and the benchmark prints its phases' times.
 */
function probeFlags(label: string): string[] {
  const dir = process.env.BENCH_PROBE;
  if (!dir) return [];
  return [
    '--require',
    path.join(__dirname, 'probe.js'),
    '--cpu-prof',
    '--cpu-prof-dir',
    path.join(dir, label),
  ];
}

function probeEnv(label: string): NodeJS.ProcessEnv {
  const dir = process.env.BENCH_PROBE;
  return dir ? { ...process.env, BENCH_PROBE_OUT: path.join(dir, `${label}.jsonl`) } : process.env;
}

function markPhase(name: string, edge: 'start' | 'end'): void {
  if (process.env.BENCH_PROBE) console.log(`phase ${name} ${edge} ${Date.now()}`);
}

function track(child: ChildProcess): ChildServer {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Megabytes of the process's current and peak resident set (Linux /proc). */
function memoryOf(pid: number | undefined): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** CPU time (user + system) the process has used so far, in ms (Linux /proc, 100 Hz ticks). */
function cpuMsOf(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function startEmulatorProcess(dataDir: string): Promise<ChildServer & ConnectionFile> {
  const hub = await launchHub({
    dataDir,
    // e.g. BENCH_HUB_ARGS='--d2c-sync-interval-ms 0' measures the fdatasync-per-PUBACK mode.
    args: (process.env.BENCH_HUB_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
    nodeArgs: probeFlags('emulator'),
    env: probeEnv('emulator'),
  });
  return { ...hub.connection, pid: hub.pid, stop: () => hub.stop() };
}

/** The bare aedes broker over TLS, in a child process; resolves with its port. */
async function startBareBroker(tlsDir: string): Promise<ChildServer & { port: number }> {
  const child = spawn(
    process.execPath,
    [...probeFlags('bare'), __filename, '--bare-broker', tlsDir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: probeEnv('bare'),
    },
  );
  const server = track(child);
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /"port":(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', () => reject(new Error('bare broker exited')));
  });
  return { ...server, port };
}

async function runBareBroker(tlsDir: string): Promise<void> {
  const broker = await Aedes.createBroker();
  const server = tls.createServer(
    {
      cert: readFileSync(path.join(tlsDir, 'server.pem')),
      key: readFileSync(path.join(tlsDir, 'server-key.pem')),
    },
    (socket) => {
      socket.setNoDelay(true); // as the emulator's MQTT adapter does
      broker.handle(socket);
    },
  );
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  process.once('SIGTERM', () => {
    server.close();
    broker.close(() => process.exit(0));
  });
}

function field(connectionString: string, name: string): string {
  const value = new RegExp(`(?:^|;)${name}=([^;]+)`).exec(connectionString)?.[1];
  if (!value) throw new Error(`connection string lacks ${name}`);
  return value;
}

/** Creates devices through the registry's REST surface; returns their primary keys. */
async function createDevices(hub: ConnectionFile, ids: readonly string[]): Promise<string[]> {
  const host = field(hub.serviceConnectionString, 'HostName');
  const policy = field(hub.serviceConnectionString, 'SharedAccessKeyName');
  const key = field(hub.serviceConnectionString, 'SharedAccessKey');
  const ca = readFileSync(hub.caFile);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca });
  const token = ServiceSas.create(host, policy, key, Math.floor(Date.now() / 1000) + 3600);
  const createOne = (deviceId: string) =>
    new Promise<string>((resolve, reject) => {
      const request = https.request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: hub.ports.gateway,
          method: 'PUT',
          path: `/devices/${encodeURIComponent(deviceId)}?api-version=2021-04-12`,
          agent,
          headers: {
            authorization: token.toString(),
            'content-type': 'application/json; charset=utf-8',
          },
        },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => {
            const parsed = JSON.parse(body) as {
              authentication?: { symmetricKey?: { primaryKey?: string } };
            };
            const primary = parsed.authentication?.symmetricKey?.primaryKey;
            if (response.statusCode === 200 && primary) resolve(primary);
            else reject(new Error(`creating ${deviceId}: HTTP ${String(response.statusCode)}`));
          });
        },
      );
      request.on('error', reject);
      request.end(JSON.stringify({ deviceId }));
    });
  const keys: string[] = [];
  for (let i = 0; i < ids.length; i += 16) {
    keys.push(...(await Promise.all(ids.slice(i, i + 16).map(createOne))));
  }
  agent.destroy();
  return keys;
}

interface Endpoint {
  url: string;
  ca: string;
  login(index: number): { clientId: string; username: string; password: string };
}

async function connectMany(endpoint: Endpoint, count: number, from = 0): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  for (let i = from; i < from + count; i += 50) {
    const batch = Array.from({ length: Math.min(50, from + count - i) }, (_, k) =>
      mqtt.connectAsync(endpoint.url, {
        ...endpoint.login(i + k),
        ca: endpoint.ca,
        servername: 'localhost',
        protocolVersion: 4,
        reconnectPeriod: 0,
        keepalive: 180,
      }),
    );
    clients.push(...(await Promise.all(batch)));
  }
  // The same for both targets: small QoS 1 publishes must not wait for Nagle's algorithm.
  for (const client of clients) {
    const stream = client.stream as { setNoDelay?: (noDelay: boolean) => unknown };
    stream.setNoDelay?.(true);
  }
  return clients;
}

/** Collects send→receive latencies of the current phase. */
class Receipts {
  phase = '';
  latencies: number[] = [];
  lastAt = 0;

  record(body: unknown): void {
    let value: unknown = body;
    if (body instanceof Uint8Array) value = JSON.parse(Buffer.from(body).toString('utf8'));
    const { p, t } = (value ?? {}) as { p?: unknown; t?: unknown };
    if (p !== this.phase || typeof t !== 'number') return;
    this.lastAt = performance.now();
    this.latencies.push(this.lastAt - t);
  }

  begin(phase: string): void {
    this.phase = phase;
    this.latencies = [];
    this.lastAt = 0;
  }
}

interface PhaseResult {
  acked: number;
  received: number;
  msgPerSec: number;
  p50: number;
  p99: number;
  /** publish → PUBACK: the broker's share of the end-to-end latency. */
  ackP50: number;
  ackP99: number;
}

/**
 * Publishes from every client, either saturating (each keeps `window` unacknowledged) or paced
 * (an aggregate `rate`), for `durationMs`; then waits for the acknowledged messages to arrive.
 */
async function runPhase(
  name: string,
  clients: readonly MqttClient[],
  topics: readonly string[],
  receipts: Receipts,
  /** `awaitReceipts: false` when nobody reads (the backlog phase). */
  options: { durationMs: number; rate?: number; awaitReceipts?: boolean },
): Promise<PhaseResult> {
  receipts.begin(name);
  markPhase(name, 'start');
  const start = performance.now();
  const deadline = start + options.durationMs;
  let acked = 0;
  let failed = 0;
  const ackLatencies: number[] = [];
  const payload = (i: number) =>
    JSON.stringify({ p: name, t: performance.now(), windSpeed: 10 + (i % 7) });
  const timers: NodeJS.Timeout[] = [];
  const finished = clients.map(
    (client, i) =>
      new Promise<void>((resolve) => {
        const topic = topics[i] ?? '';
        let inflight = 0;
        const onAck = (sentAt: number, error?: Error) => {
          inflight -= 1;
          ackLatencies.push(performance.now() - sentAt);
          if (error) failed += 1;
          else acked += 1;
          if (options.rate === undefined) pump();
          if (inflight === 0 && performance.now() >= deadline) resolve();
        };
        const send = () => {
          inflight += 1;
          const sentAt = performance.now();
          client.publish(topic, payload(i), { qos: 1 }, (error) => onAck(sentAt, error));
        };
        const pump = () => {
          while (inflight < window && performance.now() < deadline) send();
        };
        if (options.rate === undefined) {
          pump();
          return;
        }
        const intervalMs = (1000 * clients.length) / options.rate;
        const startTimer = setTimeout(() => {
          const timer = setInterval(() => {
            if (performance.now() >= deadline) {
              clearInterval(timer);
              if (inflight === 0) resolve();
              return;
            }
            send();
          }, intervalMs);
          timers.push(timer);
        }, Math.random() * intervalMs);
        timers.push(startTimer);
      }),
  );
  await Promise.all(finished);
  markPhase(name, 'end');
  for (const timer of timers) clearTimeout(timer);
  const drainDeadline = performance.now() + (options.awaitReceipts === false ? 0 : drainTimeoutMs);
  while (receipts.latencies.length < acked && performance.now() < drainDeadline) await sleep(20);
  if (failed > 0) throw new Error(`${name}: ${failed} publishes failed`);
  const sorted = [...receipts.latencies].sort((a, b) => a - b);
  const ackSorted = ackLatencies.sort((a, b) => a - b);
  const elapsedS = ((receipts.lastAt || performance.now()) - start) / 1000;
  return {
    acked,
    received: sorted.length,
    msgPerSec: sorted.length / elapsedS,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    ackP50: percentile(ackSorted, 0.5),
    ackP99: percentile(ackSorted, 0.99),
  };
}

interface LoadFigures {
  saturated: PhaseResult;
  paced: PhaseResult;
  peakRssMb: number;
  /** Server CPU per acknowledged message while saturated: robust to a busy machine. */
  cpuUsPerMessage: number;
  /**
   * The same at the fixed rate: no batching from saturation, every message paying its own
   * wake-ups, so it swings less with how the run happened to batch.
   */
  pacedCpuUsPerMessage: number;
}

/**
 * The phases, the same for both targets: a saturated warm-up (JIT, connections), then the fixed
 * rate after a warm-up of its own at that rate (so it measures the steady state, not the
 * saturated phase's backlog and garbage), then saturation with the server's CPU time.
 */
async function measureLoad(
  prefix: string,
  pid: number | undefined,
  clients: readonly MqttClient[],
  topics: readonly string[],
  receipts: Receipts,
): Promise<LoadFigures> {
  await runPhase(`${prefix}-warmup`, clients, topics, receipts, { durationMs: warmupMs });
  const pacing = { durationMs: warmupMs, rate: pacedRate };
  await runPhase(`${prefix}-paced-warmup`, clients, topics, receipts, pacing);
  const pacedCpuBefore = cpuMsOf(pid);
  const paced = await runPhase(`${prefix}-paced`, clients, topics, receipts, {
    durationMs: pacedMs,
    rate: pacedRate,
  });
  const pacedCpuUsPerMessage = ((cpuMsOf(pid) - pacedCpuBefore) * 1000) / paced.acked;
  const cpuBefore = cpuMsOf(pid);
  const saturated = await runPhase(`${prefix}-saturated`, clients, topics, receipts, {
    durationMs: saturateMs,
  });
  const cpuUsPerMessage = ((cpuMsOf(pid) - cpuBefore) * 1000) / saturated.acked;
  const peakRssMb = memoryOf(pid).peakMb;
  return { saturated, paced, peakRssMb, cpuUsPerMessage, pacedCpuUsPerMessage };
}

type Subscribe = (startPosition: { enqueuedOn: Date } | typeof earliestEventPosition) => {
  close(): Promise<void>;
};

/**
 * The Event Hub side alone: with the consumer closed the devices build a backlog; then a new
 * subscription reads it while the devices are quiet. The hub's CPU time over that read, per
 * event, is the cost of serving one event over AMQP (read, encode, frame, TLS, socket), without
 * the MQTT side and without the run-to-run swing in batching that the saturated figure has.
 */
async function measureBacklogRead(
  pid: number | undefined,
  subscribe: Subscribe,
  clients: readonly MqttClient[],
  topics: readonly string[],
  receipts: Receipts,
): Promise<number> {
  const since = new Date();
  const name = 'emulator-backlog';
  const filled = await runPhase(name, clients, topics, receipts, {
    durationMs: backlogMs,
    awaitReceipts: false,
  });
  receipts.begin(name);
  markPhase(`${name}-read`, 'start');
  const cpuBefore = cpuMsOf(pid);
  const subscription = subscribe({ enqueuedOn: since });
  const deadline = performance.now() + drainTimeoutMs;
  while (receipts.latencies.length < filled.acked && performance.now() < deadline) await sleep(20);
  const cpuMs = cpuMsOf(pid) - cpuBefore;
  markPhase(`${name}-read`, 'end');
  await subscription.close();
  if (receipts.latencies.length < filled.acked) {
    throw new Error(`backlog: ${receipts.latencies.length} of ${filled.acked} events read`);
  }
  return (cpuMs * 1000) / receipts.latencies.length;
}

interface EmulatorFigures extends LoadFigures {
  idleRssMb: number;
  /** Hub CPU per event served to a consumer reading a backlog (no MQTT traffic meanwhile). */
  backlogReadCpuUs: number;
}

async function measureEmulator(hub: ChildServer & ConnectionFile): Promise<EmulatorFigures> {
  const host = field(hub.serviceConnectionString, 'HostName');
  const ids = Array.from({ length: idleDeviceCount }, (_, i) => `bench-device-${i}`);
  const keys = await createDevices(hub, ids);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const endpoint: Endpoint = {
    url: `mqtts://127.0.0.1:${String(hub.ports.mqtt ?? hub.ports.gateway)}`,
    ca: readFileSync(hub.caFile, 'utf8'),
    login: (i) => ({
      clientId: ids[i] ?? '',
      username: `${host}/${ids[i] ?? ''}/?api-version=2021-04-12`,
      password: DeviceSas.create(host, ids[i] ?? '', keys[i] ?? '', expiry).toString(),
    }),
  };

  const receipts = new Receipts();
  const consumer = new EventHubConsumerClient('$Default', hub.eventsConnectionString);
  const subscribe: Subscribe = (startPosition) =>
    consumer.subscribe(
      {
        processEvents: async (events) => {
          for (const event of events) receipts.record(event.body);
          await Promise.resolve();
        },
        processError: async () => {
          await Promise.resolve();
        },
      },
      { startPosition, maxBatchSize: 1000, maxWaitTimeInSeconds: 1 },
    );
  const subscription = subscribe(earliestEventPosition);
  const clients = await connectMany(endpoint, deviceCount);
  const topics = ids.slice(0, deviceCount).map((id) => `devices/${id}/messages/events/`);
  try {
    const load = await measureLoad('emulator', hub.pid, clients, topics, receipts);
    await subscription.close();
    const backlogReadCpuUs = await measureBacklogRead(
      hub.pid,
      subscribe,
      clients,
      topics,
      receipts,
    );
    const idle = await connectMany(endpoint, idleDeviceCount - deviceCount, deviceCount);
    await sleep(2_000);
    const idleRssMb = memoryOf(hub.pid).rssMb;
    await Promise.all(idle.map((c) => c.endAsync(true)));
    return { ...load, idleRssMb, backlogReadCpuUs };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await subscription.close();
    await consumer.close();
  }
}

async function measureBareBroker(tlsDir: string, ca: string): Promise<LoadFigures> {
  const broker = await startBareBroker(tlsDir);
  const endpoint: Endpoint = {
    url: `mqtts://127.0.0.1:${broker.port}`,
    ca,
    login: (i) => ({ clientId: `bare-${i}`, username: 'bench', password: 'bench' }),
  };
  const receipts = new Receipts();
  try {
    const [subscriber] = await connectMany(endpoint, 1, deviceCount);
    if (!subscriber) throw new Error('no subscriber');
    subscriber.on('message', (_topic, payload) => receipts.record(payload));
    await subscriber.subscribeAsync('devices/+/messages/events/#', { qos: 1 });
    const clients = await connectMany(endpoint, deviceCount);
    const topics = clients.map((_, i) => `devices/bare-${i}/messages/events/`);
    const load = await measureLoad('bare', broker.pid, clients, topics, receipts);
    await Promise.all([...clients, subscriber].map((c) => c.endAsync(true)));
    return load;
  } finally {
    await broker.stop();
  }
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** One row; with a baseline, the ratio too. */
function row(metric: string, value: number, unit: string, baseline?: number): BenchResult {
  return baseline === undefined
    ? { benchmark, metric, value: round(value), unit }
    : {
        benchmark,
        metric,
        value: round(value),
        unit,
        baseline: round(baseline),
        ratio: round(value / baseline, 2),
      };
}

/**
 * The table rows: each hub figure with the bare broker's from the same run. The order is kept
 * stable (scripts comparing runs read rows by position); new rows go at the end.
 */
function resultRows(emulator: EmulatorFigures, bare: LoadFigures): BenchResult[] {
  const both = (metric: string, unit: string, pick: (figures: LoadFigures) => number) =>
    row(metric, pick(emulator), unit, pick(bare));
  const lower = '(lower is better)';
  const paced = `at ${pacedRate} msg/s`;
  return [
    both('end-to-end throughput, saturated', 'msg/s', (f) => f.saturated.msgPerSec),
    both(`p50 latency, saturated ${lower}`, 'ms', (f) => f.saturated.p50),
    both(`p99 latency, saturated ${lower}`, 'ms', (f) => f.saturated.p99),
    both(`p50 latency ${paced} ${lower}`, 'ms', (f) => f.paced.p50),
    both(`p99 latency ${paced} ${lower}`, 'ms', (f) => f.paced.p99),
    both(`p99 publish→PUBACK ${paced} ${lower}`, 'ms', (f) => f.paced.ackP99),
    both(`p50 publish→PUBACK ${paced} ${lower}`, 'ms', (f) => f.paced.ackP50),
    both(`p50 publish→PUBACK, saturated ${lower}`, 'ms', (f) => f.saturated.ackP50),
    both(`server CPU per message, saturated ${lower}`, 'µs', (f) => f.cpuUsPerMessage),
    both(`peak RSS under load ${lower}`, 'MB', (f) => f.peakRssMb),
    row(`RSS with ${idleDeviceCount} connected idle devices`, emulator.idleRssMb, 'MB'),
    row(`server CPU per event read from a backlog ${lower}`, emulator.backlogReadCpuUs, 'µs'),
    both('messages acknowledged, saturated', 'msg', (f) => f.saturated.acked),
    both(`server CPU per message ${paced} ${lower}`, 'µs', (f) => f.pacedCpuUsPerMessage),
  ];
}

const mqttBenchmark: Benchmark = {
  name: `emulator over MQTT/TLS: ${deviceCount} devices, QoS 1, durable, one Event Hubs consumer`,
  async run(): Promise<BenchResult[]> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'bench-iothub-'));
    try {
      const hub = await startEmulatorProcess(dataDir);
      let emulator;
      try {
        emulator = await measureEmulator(hub);
      } finally {
        await hub.stop();
      }
      const bare = await measureBareBroker(
        path.join(dataDir, 'tls'),
        readFileSync(hub.caFile, 'utf8'),
      );
      const results = resultRows(emulator, bare);
      for (const phase of [emulator.saturated, emulator.paced]) {
        if (phase.received < phase.acked) {
          throw new Error(`only ${phase.received} of ${phase.acked} acknowledged messages arrived`);
        }
      }
      return results;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
};

export default mqttBenchmark;

if (require.main === module && process.argv[2] === '--bare-broker') {
  runBareBroker(process.argv[3] ?? '').catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
