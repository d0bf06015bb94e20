/**
 * `npm start`: the whole system on this machine — Azurite (storage), the local IoT Hub and the
 * app (with the simulator) under devhost — then prints how to use it. `npm run start:func` runs the
 * app with Core Tools (`func start`) instead of devhost. Ctrl-C stops everything.
 *
 * Environment: `PORT` (API, default 7071), `LOCAL_DATA_DIR` (default `.local`; all state lives
 * there), `LOCAL_FUNCTION_KEY`, `LOCAL_AZURITE_PORTS` (where to look for a running Azurite, and
 * where to start one), `LOCAL_STACK_EPHEMERAL_PORTS=1` (every service on a free port; used by
 * tests), `LOG_LEVEL=debug` or `--verbose` (every app line). App settings: the environment, then
 * `local.settings.json`, then the stack's services (`settings.ts`), validated before
 * anything starts.
 *
 * Lifecycle: the data folder is locked (`lock.json`) before anything in it is touched, so a second
 * stack on the same folder exits at once and changes nothing. Every child ends with the stack,
 * however it ends (the package's preload `emulator/end-with-parent.ts`); the stack ends when whatever launched it is gone
 * (`stack/launcher-watch.ts`) and stops everything, exit 1, when one of its children dies.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { ConnectionInfo, DataLock } from '@iot-hub-functions/local-iothub';
import {
  acquireDataLock,
  DataLockedError,
  launchHub,
  writeCaBundle,
} from '@iot-hub-functions/local-iothub';
import type { ManagedChild } from './child-process';
import { startChild, superviseChild, watchdogArgs, watchedNodeArgs } from './child-process';
import { watchLaunchers } from './launcher-watch';
import type { AzuritePorts, Storage } from './storage';
import { chooseStorage, parseAzuritePorts, standardAzuritePorts } from './storage';
import type { AppOutput } from './output';
import { createAppOutput, isVerbose, statusIntervalMs } from './output';
import type { SettingSource, SettingsInput } from './settings';
import {
  checkStackSettings,
  mergeSettings,
  namesLocalService,
  readStackPort,
  validateSettings,
} from './settings';
import type { StackSummary } from './summary';
import { coreToolsMissing, describeStack } from './summary';

export { describeStack };

export interface StackOptions {
  repoRoot: string;
  dataDir: string;
  port: number;
  ephemeral: boolean;
  /** Where to look for a running Azurite and start the stack's own; undefined: ephemeral, no look. */
  azuritePorts?: AzuritePorts;
  useFunc: boolean;
  env: NodeJS.ProcessEnv;
  write: (line: string) => void;
  /** Relay every app line (`--verbose`, `LOG_LEVEL=debug`); default: events and a status line. */
  verbose?: boolean;
  /** The settings already checked by the caller (`checkStackSettings`); read and checked if absent. */
  settings?: SettingsInput;
}

/** What the summary shows (`StackSummary`), with every setting's source, and the controls. */
export interface RunningStack extends StackSummary {
  sources: Record<string, SettingSource>;
  /** Call once the summary is printed: app events and status lines follow it. */
  ready: () => void;
  /** Resolves with a report (name, exit code, last output lines) if a child dies while running. */
  failed: Promise<string>;
  stop: () => Promise<void>;
}

/**
 * Starts the local IoT Hub through its package's launcher and resolves with its connection details
 * once it listens. The process joins `children` the moment it is spawned (so a failed start stops
 * it too), in its own process group, ending with the stack (`endWithParent`), its output relayed
 * quietly. A `connection.json` of a hub that runs already on the folder is left alone (this one
 * then exits, refused by that hub's lock, and the start fails with its message).
 */
function startIotHub(options: StackOptions, children: ManagedChild[]): Promise<ConnectionInfo> {
  // Ephemeral (tests): no standard MQTT and AMQP ports; the gateway port serves MQTTS and AMQPS too.
  const ports = options.ephemeral
    ? ['--port', '0', '--mqtt-port', '-1', '--amqp-port', '-1', '--events-port', '0']
    : [];
  const hub = launchHub({
    dataDir: join(options.dataDir, 'iothub'),
    ephemeralPorts: false,
    // `monitor`: a consumer group for `npm run monitor`, which cannot share the app's ($Default).
    args: ['--consumer-group', 'monitor', ...ports],
    endWithParent: true,
    env: options.env,
    detached: true,
    startTimeoutMs: 60_000,
    onSpawn: (child) => {
      children.push(superviseChild('iothub', child, { write: options.write, quiet: true }));
    },
  });
  return hub.then(({ connection }) => connection);
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

/**
 * Starts the storage (unless one is used that runs already) and the local IoT Hub side by side.
 * Each child joins `children` the moment it is spawned, so a failed start stops all of them.
 */
async function startServices(
  options: StackOptions,
  settings: SettingsInput,
  children: ManagedChild[],
): Promise<{ storage: Storage; hub: ConnectionInfo }> {
  options.write('Starting the storage and the local IoT Hub...');
  const hub = startIotHub(options, children);
  // Awaited below; a hub that fails while the storage still starts must not be an unhandled rejection.
  hub.catch(() => undefined);
  const given = { AzureWebJobsStorage: userStorage(settings) };
  const storage = await chooseStorage(given, options.dataDir, options.azuritePorts, {
    env: options.env,
    write: options.write,
    quiet: true,
  });
  // First in the list: stopped last, after the app and the hub that use it.
  if (storage.child) children.unshift(storage.child);
  options.write(`Storage: ${storage.description}`);
  const [connection] = await Promise.all([hub, storage.ready]);
  return { storage, hub: connection };
}

/**
 * `AzureWebJobsStorage` as the user set it: the environment's (any account but the
 * `UseDevelopmentStorage=true` shortcut), else `local.settings.json`'s unless it names the local
 * storage emulator by its well-known key, which the stack finds or starts itself (the same rule
 * `mergeSettings` applies).
 */
function userStorage(settings: SettingsInput): string | undefined {
  const fromEnv = settings.env.AzureWebJobsStorage;
  if (fromEnv !== undefined) return fromEnv;
  const fromFile = settings.local.AzureWebJobsStorage;
  return fromFile !== undefined && !namesLocalService(fromFile) ? fromFile : undefined;
}

/** A report once any child exits while the stack is not stopping. */
function watchForFailure(children: ManagedChild[], stopping: () => boolean): Promise<string> {
  return new Promise((report) => {
    for (const child of children) {
      void child.exited.then((code) => {
        if (stopping()) return;
        report(
          `${child.name} exited unexpectedly (code ${String(code ?? child.process.signalCode)}); its last output:\n${child.recent()}`,
        );
      });
    }
  });
}

/**
 * The app under devhost, or under Core Tools' `func start` (not a Node process: it runs through
 * the watchdog so that it, too, ends with the stack).
 */
function startApp(
  options: StackOptions,
  appSettings: Record<string, string>,
  appEnv: NodeJS.ProcessEnv,
  output: AppOutput,
): ManagedChild {
  if (options.useFunc) {
    writeFuncSettings(options.repoRoot, appSettings);
    return startChild(
      'func',
      process.execPath,
      [...watchedNodeArgs(), ...watchdogArgs(), 'func', 'start', '--port', String(options.port)],
      { cwd: options.repoRoot, env: appEnv, write: options.write },
    );
  }
  return startChild(
    'app',
    process.execPath,
    [
      ...watchedNodeArgs(),
      join(options.repoRoot, 'dist', 'devhost', 'host', 'cli.js'),
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

export async function startStack(options: StackOptions): Promise<RunningStack> {
  if (options.useFunc && !findFunc(options.env.PATH)) {
    // Checked before anything starts: a missing optional dependency is not a crash of the app.
    throw new Error(coreToolsMissing());
  }
  // Every setting is checked before any process starts: a typo fails in a second, by name.
  const settingsInput = options.settings ?? checkStackSettings(options.repoRoot, options.env);
  const output = createAppOutput({
    verbose: options.verbose ?? false,
    write: options.write,
    statusIntervalMs: statusIntervalMs(options.env),
  });
  const children: ManagedChild[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    output.stop();
    for (const child of [...children].reverse()) await child.stop();
  };
  try {
    const { storage, hub } = await startServices(options, settingsInput, children);
    const caBundle = writeCaBundle(
      hub.caFile,
      join(options.dataDir, 'ca-bundle.pem'),
      options.env.NODE_EXTRA_CA_CERTS,
    );

    const settings = mergeSettings(settingsInput, {
      storage: storage.connectionString,
      service: hub.serviceConnectionString,
      events: hub.eventsConnectionString,
      eventsName: hub.eventsName,
    });
    validateSettings(settings);
    const appSettings = settings.values;
    const appEnv: NodeJS.ProcessEnv = {
      ...options.env,
      ...appSettings,
      NODE_EXTRA_CA_CERTS: caBundle,
    };

    const app = startApp(options, appSettings, appEnv, output);
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
      failed: watchForFailure(children, () => stopping),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** One line per problem, each naming what to fix; exit 1. */
function reportStartFailure(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  for (const line of message.split('\n')) console.error(`npm start: ${line}`);
  process.exit(1);
}

function parseArguments(argv: string[]): { func: boolean; verbose: boolean } {
  const program = new Command('npm start --')
    .description(
      'Runs the whole system locally: Azurite (storage), the local IoT Hub and the app with the device simulator. Ctrl-C stops everything.',
    )
    .option('--func', 'run the app with Azure Functions Core Tools (func start) instead of devhost')
    .option(
      '--verbose',
      'show every line the app logs (default: events that matter and a status line)',
    )
    .addHelpText(
      'after',
      `
Environment:
  PORT                         the API port (default 7071)
  LOCAL_DATA_DIR               where all state lives (default .local); one stack per folder
  LOCAL_FUNCTION_KEY           a fixed function key (default: generated once, kept in the folder)
  LOCAL_AZURITE_PORTS          blob,queue,table ports where an Azurite already running is used,
                               or the stack's own is started (default 10000,10001,10002)
  AzureWebJobsStorage          a storage account to use instead of Azurite
  LOCAL_STACK_EPHEMERAL_PORTS  1: every service on a free port (tests)
  LOG_LEVEL=debug              the same as --verbose
See docs/local-development.md.`,
    );
  program.parse(argv);
  const options = program.opts<{ func?: boolean; verbose?: boolean }>();
  return { func: options.func === true, verbose: options.verbose === true };
}

/** The stack's lock on its data folder, or exit 1 naming the stack that holds it. */
function lockStackFolder(dataDir: string): DataLock {
  try {
    const lock = acquireDataLock(dataDir, 'lock.json', { owner: 'a local stack' });
    process.on('exit', () => lock.release());
    return lock;
  } catch (error) {
    if (!(error instanceof DataLockedError)) throw error;
    const { holder } = error;
    const where = holder.url ? `API ${holder.url}` : 'still starting';
    process.stderr.write(
      `npm start: ${holder.owner === 'a local stack' ? 'a local stack is already running' : `${holder.owner} is using ${dataDir}`} ` +
        `(pid ${holder.pid}, ${where}); stop it with Ctrl-C, or use LOCAL_DATA_DIR=<another folder> for a second one\n`,
    );
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv);
  const repoRoot = resolve(__dirname, '..', '..', '..');
  const env = process.env;
  const ephemeral = env.LOCAL_STACK_EPHEMERAL_PORTS === '1';
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const dataDir = resolve(env.LOCAL_DATA_DIR ?? '.local');
  // Settings first: a typo is reported before the data folder is touched (even by the lock).
  let port: number;
  let settings: SettingsInput;
  try {
    port = readStackPort(env);
    settings = checkStackSettings(repoRoot, env);
  } catch (error) {
    reportStartFailure(error);
  }
  const lock = lockStackFolder(dataDir);

  let stack: RunningStack | undefined;
  let stopping = false;
  const shutdown = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    write(`Stopping the local stack (${why})...`);
    // Still starting: exiting closes the children's stdin pipes, and they stop themselves.
    if (!stack) process.exit(code);
    stack
      .stop()
      .then(() => process.exit(code))
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  process.on('SIGHUP', () => shutdown('SIGHUP', 0));
  watchLaunchers((why) => shutdown(why, 1));

  try {
    stack = await startStack({
      repoRoot,
      dataDir,
      port,
      ephemeral,
      azuritePorts:
        parseAzuritePorts(env.LOCAL_AZURITE_PORTS) ??
        (ephemeral ? undefined : standardAzuritePorts),
      useFunc: args.func,
      env,
      write,
      verbose: args.verbose || isVerbose(process.argv, env),
      settings,
    });
  } catch (error) {
    reportStartFailure(error);
  }
  if (stopping) return;
  lock.update({ url: `${stack.apiUrl}/api` });
  describeStack(stack).forEach(write);
  stack.ready();
  void stack.failed.then((report) => {
    console.error(`npm start: ${report}`);
    shutdown('a service failed', 1);
  });
}

if (require.main === module) {
  void main();
}
