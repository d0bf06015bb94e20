/**
 * `npm start`: the whole system on this machine — Azurite (storage), the local IoT Hub and the
 * app (with the simulator) under devhost — then prints how to use it. `npm run start:func` runs the
 * app with Core Tools (`func start`) instead of devhost. Ctrl-C stops everything.
 *
 * Environment: `PORT` (API, default 7071), `LOCAL_DATA_DIR` (default `.local`; all state lives
 * there), `LOCAL_FUNCTION_KEY`, `LOCAL_STACK_EPHEMERAL_PORTS=1` (every service on a free port;
 * used by tests). App settings already in the environment win, so `IOTHUB_CONNECTION_STRING` and
 * friends can point the app at a real Azure IoT Hub.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { buildConnectionString } from '../lib/connection-string';
import { writeCaBundle } from '../emulator/ca-bundle';
import { readLocalSettings } from './app-config';
import type { ManagedChild } from './child-process';
import { startChild } from './child-process';

/** Azurite's documented development account (public, like the local hub's keys). */
const azuriteAccount = 'devstoreaccount1';
const azuriteKey =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

interface EmulatorConnectionFile {
  serviceConnectionString: string;
  eventsConnectionString: string;
  eventsName: string;
  caFile: string;
  ports: Record<string, number | null>;
}

export interface StackOptions {
  repoRoot: string;
  dataDir: string;
  port: number;
  ephemeral: boolean;
  useFunc: boolean;
  env: NodeJS.ProcessEnv;
  write: (line: string) => void;
}

export interface RunningStack {
  apiUrl: string;
  functionKey: string;
  serviceConnectionString: string;
  eventsConnectionString: string;
  /** The app's storage (Azurite's well-known development account), for Storage Explorer and tools. */
  storageConnectionString: string;
  caBundle: string;
  stop: () => Promise<void>;
}

function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): string {
  return buildConnectionString({
    DefaultEndpointsProtocol: 'http',
    AccountName: azuriteAccount,
    AccountKey: azuriteKey,
    BlobEndpoint: `http://127.0.0.1:${ports.blob}/${azuriteAccount}`,
    QueueEndpoint: `http://127.0.0.1:${ports.queue}/${azuriteAccount}`,
    TableEndpoint: `http://127.0.0.1:${ports.table}/${azuriteAccount}`,
  });
}

async function startAzurite(
  options: StackOptions,
): Promise<{ child: ManagedChild; connectionString: string }> {
  const location = join(options.dataDir, 'azurite');
  mkdirSync(location, { recursive: true });
  const port = (standard: number) => String(options.ephemeral ? 0 : standard);
  const child = startChild(
    'azurite',
    process.execPath,
    [
      require.resolve('azurite/dist/src/azurite.js'),
      '--location',
      location,
      '--blobHost',
      '127.0.0.1',
      '--queueHost',
      '127.0.0.1',
      '--tableHost',
      '127.0.0.1',
      '--blobPort',
      port(10000),
      '--queuePort',
      port(10001),
      '--tablePort',
      port(10002),
      '--skipApiVersionCheck',
      '--loose',
      '--disableProductStyleUrl',
    ],
    { cwd: location, env: options.env, quiet: true, write: options.write },
  );
  const wait = (service: string) =>
    child
      .waitForLine(
        new RegExp(
          `Azurite ${service} service is successfully listening at https?://[^\\s]+:(\\d+)`,
        ),
        30_000,
      )
      .then(Number);
  const [blob, queue, table] = await Promise.all([wait('Blob'), wait('Queue'), wait('Table')]);
  return { child, connectionString: azuriteConnectionString({ blob, queue, table }) };
}

async function startIotHub(
  options: StackOptions,
): Promise<{ child: ManagedChild; connection: EmulatorConnectionFile }> {
  const data = join(options.dataDir, 'iothub');
  mkdirSync(data, { recursive: true });
  const connectionFile = join(data, 'connection.json');
  rmSync(connectionFile, { force: true });
  const ports = options.ephemeral
    ? ['--port', '0', '--mqtt-port', '-1', '--amqp-port', '-1', '--events-port', '0']
    : [];
  const child = startChild(
    'iothub',
    process.execPath,
    // `monitor`: a consumer group for `npm run monitor`, which cannot share the app's ($Default).
    [
      join(options.repoRoot, 'dist', 'emulator', 'cli.js'),
      '--data',
      data,
      '--consumer-group',
      'monitor',
      ...ports,
    ],
    { env: options.env, write: options.write, quiet: true },
  );
  const deadline = Date.now() + 30_000;
  while (!existsSync(connectionFile)) {
    if (child.process.exitCode !== null)
      throw new Error(`the local IoT Hub exited:\n${child.recent()}`);
    if (Date.now() > deadline)
      throw new Error(`the local IoT Hub did not start within 30 s:\n${child.recent()}`);
    await new Promise((done) => setTimeout(done, 100));
  }
  const connection = JSON.parse(readFileSync(connectionFile, 'utf8')) as EmulatorConnectionFile;
  return { child, connection };
}

async function waitForHealth(url: string, child: ManagedChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`the app exited:\n${child.recent()}`);
    try {
      const response = await fetch(`${url}/api/health`);
      if (response.status === 200) return;
      last = `HTTP ${response.status}: ${await response.text()}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`the app did not become healthy within ${timeoutMs / 1000} s (${last})`);
}

/** `local.settings.json.example` Values: the defaults for settings nobody set. */
function exampleSettings(repoRoot: string): Record<string, string> {
  const file = join(repoRoot, 'local.settings.json.example');
  if (!existsSync(file)) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed.Values ?? {})) {
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

function writeFuncSettings(repoRoot: string, values: Record<string, string>): void {
  const file = join(repoRoot, 'local.settings.json');
  if (existsSync(file)) return;
  writeFileSync(file, `${JSON.stringify({ IsEncrypted: false, Values: values }, null, 2)}\n`, {
    mode: 0o600,
  });
}

/** `func` on PATH (npm scripts put node_modules/.bin there), or undefined. */
function findFunc(path = process.env.PATH ?? ''): string | undefined {
  return path
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, process.platform === 'win32' ? 'func.cmd' : 'func'))
    .find((candidate) => existsSync(candidate));
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  if (options.useFunc && !findFunc(options.env.PATH)) {
    // Checked before anything starts: a missing optional dependency is not a crash of the app.
    throw new Error(
      'Azure Functions Core Tools (func) is not installed. npm install fetches it only where the machine can reach its download site (it is an optional dependency); install it, or use npm start, which runs the same stack with the built-in local host.',
    );
  }
  const children: ManagedChild[] = [];
  const stopAll = async () => {
    for (const child of [...children].reverse()) await child.stop();
  };
  try {
    mkdirSync(options.dataDir, { recursive: true });
    options.write('Starting Azurite and the local IoT Hub...');
    const [azurite, hub] = await Promise.all([startAzurite(options), startIotHub(options)]);
    children.push(azurite.child, hub.child);
    const caBundle = writeCaBundle(
      hub.connection.caFile,
      join(options.dataDir, 'ca-bundle.pem'),
      options.env.NODE_EXTRA_CA_CERTS,
    );

    const given = (name: string, fallback: string) => options.env[name] ?? fallback;
    const appSettings: Record<string, string> = {
      FUNCTIONS_WORKER_RUNTIME: 'node',
      AzureWebJobsFeatureFlags: 'EnableWorkerIndexing',
      AzureWebJobsStorage: given('AzureWebJobsStorage', azurite.connectionString),
      IOTHUB_CONNECTION_STRING: given(
        'IOTHUB_CONNECTION_STRING',
        hub.connection.serviceConnectionString,
      ),
      IOTHUB_EVENTS_CONNECTION: given(
        'IOTHUB_EVENTS_CONNECTION',
        hub.connection.eventsConnectionString,
      ),
      IOTHUB_EVENTS_NAME: given('IOTHUB_EVENTS_NAME', hub.connection.eventsName),
      IOTHUB_EVENTS_CONSUMER_GROUP: given('IOTHUB_EVENTS_CONSUMER_GROUP', '$Default'),
      SIMULATOR_ENABLED: given('SIMULATOR_ENABLED', 'true'),
    };
    // Precedence: the environment, then the stack's service connections, then the user's
    // local.settings.json (devhost reads it), then the example's defaults.
    const local = readLocalSettings(options.repoRoot);
    const defaults = Object.fromEntries(
      Object.entries(exampleSettings(options.repoRoot)).filter(([name]) => !(name in local)),
    );
    const appEnv: NodeJS.ProcessEnv = {
      ...defaults,
      ...options.env,
      ...appSettings,
      NODE_EXTRA_CA_CERTS: caBundle,
    };

    let app: ManagedChild;
    if (options.useFunc) {
      writeFuncSettings(options.repoRoot, { ...exampleSettings(options.repoRoot), ...appSettings });
      app = startChild('func', 'func', ['start', '--port', String(options.port)], {
        cwd: options.repoRoot,
        env: appEnv,
        write: options.write,
      });
    } else {
      app = startChild(
        'app',
        process.execPath,
        [
          join(options.repoRoot, 'dist', 'devhost', 'cli.js'),
          '--app',
          options.repoRoot,
          '--port',
          String(options.port),
          '--data',
          join(options.dataDir, 'devhost'),
        ],
        { env: appEnv, write: options.write },
      );
    }
    children.push(app);
    const apiUrl = options.useFunc
      ? `http://localhost:${options.port}`
      : await app.waitForLine(/Host started: (http:\/\/\S+)/, 60_000);
    await waitForHealth(apiUrl, app, 60_000);
    const keyFile = join(options.dataDir, 'devhost', 'keys.json');
    const functionKey =
      options.env.LOCAL_FUNCTION_KEY ||
      (existsSync(keyFile)
        ? (JSON.parse(readFileSync(keyFile, 'utf8')) as { functionKey: string }).functionKey
        : '');
    return {
      apiUrl,
      functionKey,
      serviceConnectionString: appSettings.IOTHUB_CONNECTION_STRING ?? '',
      eventsConnectionString: appSettings.IOTHUB_EVENTS_CONNECTION ?? '',
      storageConnectionString: appSettings.AzureWebJobsStorage ?? '',
      caBundle,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export function describeStack(stack: RunningStack): string[] {
  const hostName = /HostName=([^;]+)/.exec(stack.serviceConnectionString)?.[1] ?? 'localhost:4443';
  const api = `${stack.apiUrl}/api`;
  const key = stack.functionKey;
  return [
    '',
    'The local stack is running.',
    `  API:                      ${api}   (OpenAPI: ${api}/openapi.json)`,
    `  Function key:             ${key}`,
    `  Service connection:       ${stack.serviceConnectionString}`,
    `  Events (Event Hub) conn.: ${stack.eventsConnectionString}`,
    `  Storage (Azurite):        ${stack.storageConnectionString}`,
    `  Device connection string: HostName=${hostName};DeviceId=<deviceId>;SharedAccessKey=<primaryKey from POST /devices>`,
    '',
    'Trust the local IoT Hub CA in your own shell before using the SDKs:',
    `  export NODE_EXTRA_CA_CERTS=${stack.caBundle}`,
    '',
    'Try it:',
    `  curl -s -X POST "${api}/devices" -H "x-functions-key: ${key}" -H 'content-type: application/json' -d '{"deviceId":"my-device"}'`,
    `  curl -s "${api}/devices/sim-1/telemetry?limit=5" -H "x-functions-key: ${key}"`,
    `  curl -s -X POST "${api}/devices/my-device/messages" -H "x-functions-key: ${key}" -H 'content-type: application/json' -d '{"payload":{"command":"blink"},"ack":"full"}'`,
    '',
    'Ctrl-C stops everything; state stays in the data folder.',
  ];
}

async function main(): Promise<void> {
  const repoRoot = resolve(__dirname, '..', '..');
  const env = process.env;
  const ephemeral = env.LOCAL_STACK_EPHEMERAL_PORTS === '1';
  const port = ephemeral ? 0 : Number(env.PORT ?? 7071);
  const write = (line: string) => process.stdout.write(`${line}\n`);
  let stack: RunningStack;
  try {
    stack = await startStack({
      repoRoot,
      dataDir: resolve(env.LOCAL_DATA_DIR ?? '.local'),
      port,
      ephemeral,
      useFunc: process.argv.includes('--func'),
      env,
      write,
    });
  } catch (error) {
    console.error(`npm start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  describeStack(stack).forEach(write);
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    write('Stopping the local stack...');
    stack
      .stop()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

if (require.main === module) {
  void main();
}
