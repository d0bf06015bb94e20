/**
 * The local Functions host as a library: `startHost` loads any Node v4 app (its `package.json`
 * `main`, `host.json`, `local.settings.json`) through the real `@azure/functions` library and
 * serves its triggers — HTTP, timer and Event Hubs, built by the providers in `triggers/` from the
 * binding metadata the app registers — until `stop()`. One host per process (the library keeps
 * process-wide state); the CLI (`cli.ts`) runs it in a process of its own.
 *
 * The host reads settings and never writes `process.env`: the app reads its settings from its
 * process environment, which `cli.ts` sets up once at start (see there).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { HostConfig } from './app-config';
import { readHostConfig, readLocalSettings } from './app-config';
import { maxRequestBodyBytesFrom } from './http/body';
import type { HostKeys } from './http/keys';
import { loadOrCreateKeys } from './http/keys';
import type { HttpTimeouts } from './http/server';
import { createHttpServer, sortHttpFunctions } from './http/server';
import { HostStartError, loadApp } from './load-app';
import type { HostLog } from './log';
import { createConsoleLog } from './log';
import { HostRuntime } from './runtime';
import { eventHubTrigger } from './triggers/eventhub';
import { httpTrigger } from './triggers/http';
import type {
  FunctionSummary,
  Settings,
  TriggerContext,
  TriggerProvider,
} from './triggers/provider';
import { triggerOf } from './triggers/provider';
import { timerTrigger } from './triggers/timer';

export { HostStartError };
export type { FunctionSummary };

export interface StartHostOptions {
  /** The function app folder (holds package.json, host.json, local.settings.json). */
  appDir: string;
  /** HTTP port; 0 picks a free one. Default: `PORT` or 7071. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Settings that win over the environment and `local.settings.json` (for the host's reading). */
  env?: Record<string, string>;
  /** Where keys, timer status and the Event Hub owner id live. Default `$LOCAL_DATA_DIR/devhost`. */
  dataDir?: string;
  log?: HostLog;
  /** Event Hub load-balancing interval in ms (default 2000). */
  loadBalancingIntervalMs?: number;
  /** HTTP connection timeouts (tests shorten them); defaults in `defaultHttpTimeouts`. */
  httpTimeouts?: Partial<HttpTimeouts>;
}

export interface RunningHost {
  url: string;
  port: number;
  /** The function key (`authLevel: 'function'`). */
  key: string;
  masterKey: string;
  functions: FunctionSummary[];
  /** Runs a non-HTTP function now, as `POST /admin/functions/{name}` does. */
  trigger(name: string): Promise<boolean>;
  stop(): Promise<void>;
}

const providers: readonly TriggerProvider[] = [httpTrigger, timerTrigger, eventHubTrigger];

/**
 * The app settings as the host reads them: `local.settings.json` `Values`, under the process
 * environment, under `options.env`. A copy: nothing is written back.
 */
export function hostSettings(appDir: string, overrides: Record<string, string> = {}): Settings {
  const settings: Record<string, string> = { ...readLocalSettings(appDir) };
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined) settings[name] = value;
  }
  return { ...settings, ...overrides };
}

function isDisabled(name: string, settings: Settings): boolean {
  const value =
    settings[`AzureWebJobs.${name}.Disabled`] ?? settings[`AzureWebJobs_${name}_Disabled`];
  return value !== undefined && /^(true|1)$/i.test(value.trim());
}

/** Step 2: every registered function to its provider; returns the summaries. */
function buildTriggers(context: TriggerContext): FunctionSummary[] {
  const { log, core } = context.runtime;
  const summaries: FunctionSummary[] = [];
  for (const fn of core.functions.values()) {
    const target = triggerOf(fn);
    const type = String(target.binding.type);
    if (isDisabled(target.name, context.settings)) {
      log.info(
        `Function '${target.name}' is disabled by its AzureWebJobs.${target.name}.Disabled setting`,
      );
      continue;
    }
    const provider = providers.find((p) => p.handles(type));
    if (provider) summaries.push(provider.build(target, context));
    else
      log.warn(
        `Function '${target.name}': trigger type "${type}" is not supported by devhost; skipped`,
      );
  }
  return summaries;
}

function listen(server: Server, port: number, hostname: string): Promise<number> {
  return new Promise((resolveListen, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE')
        reject(new HostStartError(`port ${port} on ${hostname} is already in use`));
      else if (error.code === 'EACCES')
        reject(new HostStartError(`no permission to listen on port ${port}`));
      else reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolveListen((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, hostname);
  });
}

function requestedPort(options: StartHostOptions, settings: Settings): number {
  const port = options.port ?? (settings.PORT ? Number(settings.PORT) : 7071);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HostStartError(
      `port "${String(options.port ?? settings.PORT)}" is not a valid port number`,
    );
  }
  return port;
}

interface Served {
  url: string;
  port: number;
  keys: HostKeys;
}

/** Step 3: the HTTP server (routes, keys, admin endpoints) listening; fills in the HTTP URLs. */
async function serveHttp(
  context: TriggerContext,
  summaries: FunctionSummary[],
  options: StartHostOptions,
): Promise<Served> {
  const { runtime, settings, hostConfig } = context;
  const keys = loadOrCreateKeys(context.dataDir, settings);
  const functions = sortHttpFunctions(context.http);
  runtime.server = createHttpServer({
    functions,
    routePrefix: hostConfig.routePrefix,
    keys,
    log: runtime.log,
    invoke: runtime.invoke,
    triggerNonHttp: (name) => triggerByName(context, name),
    accepting: () => runtime.accepting,
    maxRequestBodyBytes: maxRequestBodyBytesFrom(settings.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT),
    timeouts: options.httpTimeouts,
  });
  const hostname = options.hostname ?? '127.0.0.1';
  const port = await listen(runtime.server, requestedPort(options, settings), hostname);
  const url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
  const prefix = hostConfig.routePrefix ? `/${hostConfig.routePrefix}` : '';
  for (const fn of functions) {
    const summary = summaries.find((s) => s.name === fn.name);
    if (summary) {
      summary.http = {
        methods: fn.methods.size === 0 ? ['*'] : [...fn.methods],
        url: `${url}${prefix}/${fn.route.template.replace(/^\/+/, '')}`,
        authLevel: fn.authLevel,
      };
    }
  }
  return { url, port, keys };
}

function triggerByName(context: TriggerContext, name: string): Promise<boolean> {
  const runner = context.timerByName.get(name.toLowerCase());
  return Promise.resolve(runner ? runner.trigger() : false);
}

function triggerContext(
  runtime: HostRuntime,
  options: StartHostOptions,
  settings: Settings,
  hostConfig: HostConfig,
): TriggerContext {
  return {
    runtime,
    settings,
    hostConfig,
    dataDir: resolve(options.dataDir ?? join(settings.LOCAL_DATA_DIR ?? '.local', 'devhost')),
    loadBalancingIntervalMs: options.loadBalancingIntervalMs ?? 2000,
    http: [],
    timerByName: new Map(),
  };
}

/** Loads the app (step 1), builds its triggers (2), serves HTTP (3), then starts the triggers. */
export async function startHost(options: StartHostOptions): Promise<RunningHost> {
  const appDir = resolve(options.appDir);
  const runtime = new HostRuntime(options.log ?? createConsoleLog());
  try {
    const settings = hostSettings(appDir, options.env);
    const context = triggerContext(runtime, options, settings, readHostConfig(appDir));
    await loadApp(runtime.core, appDir);
    const functions = buildTriggers(context);
    const { url, port, keys } = await serveHttp(context, functions, options);
    await runtime.startTriggers();
    return {
      url,
      port,
      key: keys.functionKey,
      masterKey: keys.masterKey,
      functions,
      trigger: (name) => triggerByName(context, name),
      stop: () => runtime.stop(),
    };
  } catch (error) {
    await runtime.stop().catch(() => undefined);
    throw error;
  }
}
