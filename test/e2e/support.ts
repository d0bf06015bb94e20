/**
 * Helpers for end-to-end tests and the stack benchmark: the whole local stack (`node
 * dist/devhost/stack/stack.js`, what `npm start` runs) as a child process on ephemeral ports with its own
 * data folder, the API as curl would call it, the official device SDK as the device, the stack's
 * own Azurite tables, and the served OpenAPI document as a response checker.
 *
 * Why a child process: devhost provides `@azure/functions-core` through Node's module loader and
 * the emulator needs aedes (ESM), neither of which works inside Jest's module registry; it also
 * means the tests exercise exactly what users run.
 *
 * No Jest globals here: `bench/stack.bench.ts` uses these helpers too.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NoRetry } from 'azure-iot-common';
import { Client as DeviceClient, type Message } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { z } from 'zod';
import { repoRoot as findRepoRoot } from '../support/emulator';
import { until, type Probe } from '../support/wait';

/** The repository (the same from `test/e2e` and from `dist/test/e2e`). */
export const repoRoot = findRepoRoot(__dirname);

// ---------------------------------------------------------------------------------------------
// Bounded waiting

/**
 * `until` (test/support/wait.ts), except that a probe that throws is asked again: across
 * processes a failed request is usually transient (a service still starting, a busy moment).
 * The last error is named if the deadline passes.
 */
export async function waitFor<T>(
  what: string,
  probe: Probe<T>,
  { timeoutMs = 30_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  let lastError: unknown;
  const tolerant: Probe<T> = async () => {
    try {
      const value = await probe();
      lastError = undefined;
      return value;
    } catch (error) {
      lastError = error;
      return undefined;
    }
  };
  try {
    return await until(what, tolerant, timeoutMs, intervalMs);
  } catch (error) {
    if (!(lastError instanceof Error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message} (last error: ${lastError.message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The stack as a child process

export interface StackProcess {
  dataDir: string;
  /** The pid of the process started: the stack itself, or npm with `launcher: 'npm'`. */
  pid: number;
  /** `http://127.0.0.1:<port>/api` */
  apiUrl: string;
  /** The function key the stack printed (generated on first start, stored in the data folder). */
  functionKey: string;
  /** The local hub's service connection string (from `iothub/connection.json`). */
  serviceConnectionString: string;
  /** The stack's Azurite, as `npm start` prints it. */
  storageConnectionString: string;
  /** The hub's CA certificate (PEM), for clients started without `NODE_EXTRA_CA_CERTS`. */
  caPem: string;
  /** Every output line so far (app lines are prefixed `[app]`). */
  lines(): readonly string[];
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * A fresh data folder for one stack. Under `npm test` the test CA (`TEST_TLS_DIR`, trusted by
 * this process through `NODE_EXTRA_CA_CERTS`) is copied into the hub's TLS folder before the
 * first start, exactly as `startEmulator` does, so the stack's hub serves a certificate issued
 * by it.
 */
export function createStackDataDir(prefix = 'e2e-stack-'): string {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const testTls = process.env.TEST_TLS_DIR;
  if (testTls) {
    const target = join(dataDir, 'iothub', 'tls');
    mkdirSync(target, { recursive: true });
    for (const name of ['ca.pem', 'ca-key.pem']) {
      copyFileSync(join(testTls, name), join(target, name));
    }
  }
  return dataDir;
}

/** Settings a parent shell might carry that would point the stack away from its own services. */
const inheritedSettingsToDrop = [
  'AzureWebJobsStorage',
  'IOTHUB_CONNECTION_STRING',
  'IOTHUB_HOST_NAME',
  'IOTHUB_EVENTS_CONNECTION',
  'IOTHUB_EVENTS_NAME',
  'LOCAL_FUNCTION_KEY',
  'PORT',
];

const runningStacks = new Set<ChildProcess>();
const stackDataDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test run that ends without stopping a stack: SIGTERM lets the stack stop its own services,
  // and anything already orphaned in that data folder is killed by pid.
  process.on('exit', () => {
    for (const child of runningStacks) child.kill('SIGTERM');
    for (const dir of stackDataDirs) killProcessesUsing(dir);
  });
}

/** `dist/devhost/stack/stack.js`, what `npm start` runs; throws if the build is missing. */
export function stackScript(): string {
  const script = join(repoRoot, 'dist', 'devhost', 'stack', 'stack.js');
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`);
  return script;
}

/**
 * The environment a test stack runs with: this process's, minus settings that would point it
 * away from its own services, plus `env`, the data folder and ephemeral ports.
 */
export function stackEnv(dataDir: string, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of inheritedSettingsToDrop) delete childEnv[name];
  Object.assign(childEnv, env, { LOCAL_DATA_DIR: dataDir, LOCAL_STACK_EPHEMERAL_PORTS: '1' });
  return childEnv;
}

/** Every line the child prints on stdout and stderr (the newest 50,000); echoed with STACK_LOG. */
function collectLines(child: ChildProcess): string[] {
  const lines: string[] = [];
  const onLine = (line: string) => {
    if (lines.length >= 50_000) lines.splice(0, 10_000);
    lines.push(line);
    if (process.env.STACK_LOG) process.stderr.write(`[stack] ${line}\n`);
  };
  if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on('line', onLine);
  return lines;
}

/** The first capture of `label` among `lines`, or '' when none matches. */
function printedValue(lines: readonly string[], label: RegExp): string {
  for (const line of lines) {
    const m = label.exec(line);
    if (m?.[1]) return m[1];
  }
  return '';
}

/**
 * Waits for the stack's summary; on a timeout or an early exit, stops it and throws with its
 * recent output. The summary may reach this process in more than one chunk: it is complete once
 * its last labelled line (after the API URL and the function key) has arrived.
 */
async function waitForSummary(
  child: ChildProcess,
  lines: readonly string[],
  timeoutMs: number,
  stop: (timeoutMs?: number) => Promise<number | null>,
): Promise<void> {
  const recent = () => lines.slice(-40).join('\n');
  const complete = () =>
    lines.includes('The local stack is running.') &&
    printedValue(lines, /^ {2}Storage \(Azurite\): +(\S+)/) !== '';
  let outcome: 'running' | 'exited';
  try {
    outcome = await waitFor(
      'the stack to report that it is running',
      () => {
        if (child.exitCode !== null || child.signalCode !== null) return 'exited' as const;
        return complete() ? ('running' as const) : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  } catch (error) {
    await stop(15_000);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n--- stack output ---\n${recent()}`);
  }
  if (outcome === 'exited') {
    await stop(15_000);
    const how = child.exitCode ?? child.signalCode;
    throw new Error(`the stack exited (${String(how)}) before it was running:\n${recent()}`);
  }
}

/**
 * Starts `node dist/devhost/stack/stack.js` on ephemeral ports with `dataDir` and waits until it says
 * it is running (it waits for `/api/health` itself). `env` adds or overrides app settings.
 * `launcher: 'npm'` starts it through `npm exec` (npm → `sh -c` → node, as `npm start` does);
 * `pid` is then npm's, and the stack's own pid is in `lock.json` of the data folder.
 */
export async function startStackProcess(
  dataDir: string,
  env: Record<string, string> = {},
  {
    timeoutMs = 120_000,
    launcher = 'node',
  }: { timeoutMs?: number; launcher?: 'node' | 'npm' } = {},
): Promise<StackProcess> {
  installExitHook();
  const script = stackScript();
  const childEnv = stackEnv(dataDir, env);
  // Through npm, as `npm start` runs it (npm → sh -c → node), without npm start's build step.
  const [command, args] =
    launcher === 'npm'
      ? ['npm', ['exec', '--offline', '--', 'node', script]]
      : [process.execPath, [script]];
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  runningStacks.add(child);
  stackDataDirs.add(dataDir);
  const lines = collectLines(child);
  const exited = new Promise<number | null>((done) => {
    child.once('exit', (code) => {
      runningStacks.delete(child);
      done(code);
    });
  });

  const stop = async (stopTimeoutMs = 60_000): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    const code = await exited;
    clearTimeout(timer);
    // The stack stops its services before it exits; anything left was orphaned by a failure.
    killProcessesUsing(dataDir);
    return code;
  };

  await waitForSummary(child, lines, timeoutMs, stop);
  const printed = (label: RegExp) => printedValue(lines, label);
  const connection = JSON.parse(
    readFileSync(join(dataDir, 'iothub', 'connection.json'), 'utf8'),
  ) as { serviceConnectionString: string; caFile: string };
  return {
    dataDir,
    pid: child.pid ?? -1,
    apiUrl: printed(/^ {2}API: +(http:\/\/\S+)/),
    functionKey: printed(/^ {2}Function key: +(\S+)/),
    storageConnectionString: printed(/^ {2}Storage \(Azurite\): +(\S+)/),
    serviceConnectionString: connection.serviceConnectionString,
    caPem: readFileSync(connection.caFile, 'utf8'),
    lines: () => lines,
    exited,
    stop,
  };
}

/** Pids of processes whose command line names `dir` (the stack's services name their data folder). */
export function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => arg === dir || arg.startsWith(`${dir}/`))) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function killProcessesUsing(dir: string): void {
  for (const pid of processesUsing(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Removes a data folder after making sure nothing still runs in it. */
export function removeStackDataDir(dataDir: string): void {
  killProcessesUsing(dataDir);
  stackDataDirs.delete(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * A stack test's `afterAll`: closes the device, stops the stack and removes its data folder (even
 * when stopping fails). Resolves with the stack's exit code, `undefined` when none was started.
 */
export async function tearDownStack(run: {
  device?: TestDevice;
  stack?: StackProcess;
  dataDir?: string;
}): Promise<number | null | undefined> {
  await run.device?.close();
  try {
    return run.stack ? await run.stack.stop() : undefined;
  } finally {
    if (run.dataDir) removeStackDataDir(run.dataDir);
  }
}

// ---------------------------------------------------------------------------------------------
// The stack's own Azurite

export { tableEntities as readTable, type StoredEntity } from '../support/azurite';

// ---------------------------------------------------------------------------------------------
// The API over HTTP, as curl would call it

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: unknown;
}

export interface ApiCall {
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /** Sent as is (with `content-type` from `headers`, if any). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** The function key header; null sends none. Default: the stack's key. */
  key?: string | null;
}

export class Api {
  constructor(
    readonly apiUrl: string,
    readonly key: string,
  ) {}

  async call(method: string, path: string, options: ApiCall = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? this.key : options.key;
    if (key !== null) headers['x-functions-key'] = key;
    let body: string | Buffer | undefined = options.raw;
    if (options.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(options.json);
    }
    const response = await fetch(`${this.apiUrl}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, text, body: parsed };
  }

  get(path: string, options?: ApiCall) {
    return this.call('GET', path, options);
  }

  post(path: string, json?: unknown, options: ApiCall = {}) {
    return this.call('POST', path, { ...options, json });
  }
}

/** A value as a record, or a thrown error naming what was expected. */
export function asRecord(value: unknown, what = 'a JSON object'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`expected ${what}, got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

export interface TelemetryItem {
  deviceId: string;
  windSpeed: number;
  messageId?: string;
  correlationId?: string;
  enqueuedTime: string;
  partition: string;
  sequenceNumber: number | string;
  properties?: Record<string, string>;
}

/** `GET /devices/{id}/telemetry` items (newest first); throws on anything but 200. */
export async function readTelemetry(
  api: Api,
  deviceId: string,
  query = '',
): Promise<{ items: TelemetryItem[]; latest?: TelemetryItem }> {
  const response = await api.get(`/devices/${encodeURIComponent(deviceId)}/telemetry${query}`);
  if (response.status !== 200) throw new Error(`telemetry read: HTTP ${response.status}`);
  return response.body as { items: TelemetryItem[]; latest?: TelemetryItem };
}

// ---------------------------------------------------------------------------------------------
// The device (official SDK over MQTT)

export interface TestDevice {
  client: DeviceClient;
  /** C2D messages received so far (each completed as soon as it arrives). */
  received: Message[];
  close(): Promise<void>;
}

/**
 * Connects with a device connection string over MQTT. Given `caPem` (the stack's CA), the device
 * trusts the hub without `NODE_EXTRA_CA_CERTS`, so the tests also run under plain `npx jest`, and
 * a refused connection cannot be a certificate problem in disguise.
 */
export async function connectDevice(connectionString: string, caPem?: string): Promise<TestDevice> {
  const client = DeviceClient.fromConnectionString(connectionString, Mqtt);
  // A test wants failures now, not after the SDK's minutes of retries.
  client.setRetryPolicy(new NoRetry());
  if (caPem) await client.setOptions({ ca: caPem });
  const received: Message[] = [];
  client.on('message', (message: Message) => {
    received.push(message);
    client.complete(message, () => undefined);
  });
  client.on('error', () => undefined);
  await client.open();
  let closed = false;
  return {
    client,
    received,
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close().catch(() => undefined);
    },
  };
}

/** A received message's body as UTF-8 text. */
export function messageText(message: Message): string {
  const data: unknown = message.getData();
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data) || data instanceof Uint8Array)
    return Buffer.from(data).toString('utf8');
  throw new Error('unexpected message body type');
}

// ---------------------------------------------------------------------------------------------
// The served OpenAPI document as a response checker

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
}

type JsonSchemaInput = Parameters<typeof z.fromJSONSchema>[0];

/** Every `$ref` in a JSON value. */
function refsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refsIn(item, found);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.push(inner);
      else refsIn(inner, found);
    }
  }
  return found;
}

export class OpenApiChecker {
  private readonly defs: Record<string, unknown>;
  private readonly compiled = new Map<string, z.ZodType>();

  /** Validates the document's structure: throws if it is not a usable OpenAPI 3.1 document. */
  constructor(readonly document: OpenApiDocument) {
    if (!/^3\.1\.\d+$/.test(String(document.openapi))) throw new Error('not OpenAPI 3.1');
    if (!document.info?.title || !document.info.version) throw new Error('info is incomplete');
    const schemas = document.components?.schemas ?? {};
    for (const ref of refsIn(document)) {
      const id = ref.replace('#/components/schemas/', '');
      if (!ref.startsWith('#/components/schemas/') || !(id in schemas)) {
        throw new Error(`unresolved $ref ${ref}`);
      }
    }
    for (const [path, operations] of Object.entries(document.paths ?? {})) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!operation.responses || Object.keys(operation.responses).length === 0) {
          throw new Error(`${method.toUpperCase()} ${path} documents no responses`);
        }
      }
    }
    // zod resolves local `#/$defs/...` references; components become $defs.
    this.defs = JSON.parse(
      JSON.stringify(schemas).replaceAll('#/components/schemas/', '#/$defs/'),
    ) as Record<string, unknown>;
    for (const name of Object.keys(this.defs)) this.schema(name);
  }

  static fromJson(value: unknown): OpenApiChecker {
    return new OpenApiChecker(asRecord(value, 'an OpenAPI document') as unknown as OpenApiDocument);
  }

  /** `METHOD /template` for every documented operation. */
  operations(): string[] {
    return Object.entries(this.document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
  }

  private schema(name: string): z.ZodType {
    let schema = this.compiled.get(name);
    if (!schema) {
      const source = asRecord(this.defs[name], `schema ${name}`);
      schema = z.fromJSONSchema({ ...source, $defs: this.defs } as JsonSchemaInput);
      this.compiled.set(name, schema);
    }
    return schema;
  }

  /**
   * Checks that `status` is documented for the operation and, where the document gives a body
   * schema for it, that `response.body` matches it. Returns a list of problems (empty when fine).
   */
  check(method: string, template: string, response: ApiResponse): string[] {
    const operation = this.document.paths[template]?.[method.toLowerCase()];
    if (!operation) return [`${method} ${template} is not documented`];
    const documented = operation.responses?.[String(response.status)];
    if (documented === undefined) {
      return [`${method} ${template} does not document status ${response.status}`];
    }
    const content = asRecord(documented).content;
    if (content === undefined) return [];
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const media = asRecord(content)[contentType];
    if (media === undefined) {
      return [`${method} ${template} ${response.status}: undocumented content type ${contentType}`];
    }
    const schema = asRecord(media).schema;
    if (schema === undefined) return [];
    const ref = asRecord(schema).$ref;
    const compiled =
      typeof ref === 'string'
        ? this.schema(ref.replace('#/components/schemas/', ''))
        : z.fromJSONSchema({
            ...JSON.parse(JSON.stringify(schema).replaceAll('#/components/schemas/', '#/$defs/')),
            $defs: this.defs,
          } as JsonSchemaInput);
    const result = compiled.safeParse(response.body);
    if (result.success) return [];
    return result.error.issues.map(
      (issue) =>
        `${method} ${template} ${response.status}: ${issue.path.join('.') || '(body)'} ${issue.message}`,
    );
  }
}
