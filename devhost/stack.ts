/**
 * `npm start`: the whole system on this machine — Azurite (storage), the local IoT Hub and the
 * app (with the simulator) under devhost — then prints how to use it. `npm run start:func` runs the
 * app with Core Tools (`func start`) instead of devhost. Ctrl-C stops everything.
 *
 * Environment: `PORT` (API, default 7071), `LOCAL_DATA_DIR` (default `.local`; all state lives
 * there), `LOCAL_FUNCTION_KEY`, `LOCAL_STACK_EPHEMERAL_PORTS=1` (every service on a free port;
 * used by tests), `LOG_LEVEL=debug` or `--verbose` (every app line). App settings: the environment,
 * then `local.settings.json`, then the stack's services (`stack-settings.ts`), validated before
 * anything starts.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { buildConnectionString } from '../lib/connection-string';
import { writeCaBundle } from '../emulator/ca-bundle';
import type { ManagedChild } from './child-process';
import { startChild } from './child-process';
import { createAppOutput, isVerbose, statusIntervalMs } from './stack-output';
import type { SettingSource } from './stack-settings';
import {
  azuriteAccount,
  azuriteKey,
  checkStackSettings,
  mergeSettings,
  readStackPort,
  validateSettings,
} from './stack-settings';
import { coreToolsMissing, describeStack } from './stack-summary';

export { describeStack };

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
  /** Relay every app line (`--verbose`, `LOG_LEVEL=debug`); default: events and a status line. */
  verbose?: boolean;
}

export interface RunningStack {
  apiUrl: string;
  functionKey: string;
  serviceConnectionString: string;
  eventsConnectionString: string;
  /** The app's storage (Azurite's well-known development account), for Storage Explorer and tools. */
  storageConnectionString: string;
  caBundle: string;
  /** Where each app setting came from, for the summary. */
  sources: Record<string, SettingSource>;
  /** Call once the summary is printed: app events and status lines follow it. */
  ready: () => void;
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
    throw new Error(coreToolsMissing());
  }
  // Every setting is checked before any process starts: a typo fails in a second, by name.
  const settingsInput = checkStackSettings(options.repoRoot, options.env);
  const output = createAppOutput({
    verbose: options.verbose ?? false,
    write: options.write,
    statusIntervalMs: statusIntervalMs(options.env),
  });
  const children: ManagedChild[] = [];
  const stopAll = async () => {
    output.stop();
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

    const settings = mergeSettings(settingsInput, {
      storage: azurite.connectionString,
      service: hub.connection.serviceConnectionString,
      events: hub.connection.eventsConnectionString,
      eventsName: hub.connection.eventsName,
    });
    validateSettings(settings);
    const appSettings = settings.values;
    const appEnv: NodeJS.ProcessEnv = {
      ...options.env,
      ...appSettings,
      NODE_EXTRA_CA_CERTS: caBundle,
    };

    let app: ManagedChild;
    if (options.useFunc) {
      writeFuncSettings(options.repoRoot, appSettings);
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
        { env: appEnv, write: (line) => output.write(line) },
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
      sources: settings.sources,
      ready: () => output.ready(),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function main(): Promise<void> {
  const repoRoot = resolve(__dirname, '..', '..');
  const env = process.env;
  const ephemeral = env.LOCAL_STACK_EPHEMERAL_PORTS === '1';
  const write = (line: string) => process.stdout.write(`${line}\n`);
  let stack: RunningStack;
  try {
    const port = readStackPort(env);
    stack = await startStack({
      repoRoot,
      dataDir: resolve(env.LOCAL_DATA_DIR ?? '.local'),
      port,
      ephemeral,
      useFunc: process.argv.includes('--func'),
      env,
      write,
      verbose: isVerbose(process.argv, env),
    });
  } catch (error) {
    // One line per problem, each naming what to fix.
    const message = error instanceof Error ? error.message : String(error);
    for (const line of message.split('\n')) console.error(`npm start: ${line}`);
    process.exit(1);
  }
  describeStack(stack).forEach(write);
  stack.ready();
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
