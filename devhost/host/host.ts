/**
 * The local Functions host as a library: `startHost` loads an app through the real
 * `@azure/functions` library and serves its HTTP, timer and Event Hub triggers until `stop()`.
 * One host per process (the library keeps process-wide state); the CLI (`cli.ts`) and the local
 * stack run it in a child process.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import {
  applySettings,
  readHostConfig,
  readLocalSettings,
  resolveBindingExpression,
} from './app-config';
import { findEntryFiles, forgetAppModules } from './app-loader';
import type { RegisteredFunction } from './core-api';
import { activateCore, FunctionsCore } from './core-api';
import type { Cardinality } from './eventhub/convert';
import { EventHubListener } from './eventhub/listener';
import { maxRequestBodyBytesFrom } from './http/body';
import type { HttpFunction, HttpTimeouts } from './http/server';
import {
  createHttpServer,
  isHttpTriggerType,
  sortHttpFunctions,
  toHttpFunction,
} from './http/server';
import { loadOrCreateKeys } from './http/keys';
import type { InvocationInput, InvocationResult } from './invoke';
import { invokeFunction } from './invoke';
import type { HostLog } from './log';
import { createConsoleLog } from './log';
import { invokeWithRetries, toRetryPolicy } from './retry';
import type { RpcBindingInfo } from './rpc-types';
import { parseSchedule } from './timer/schedule';
import { TimerRunner } from './timer/timer-runner';

export interface StartHostOptions {
  /** The function app folder (holds package.json, host.json, local.settings.json). */
  appDir: string;
  /** HTTP port; 0 picks a free one. Default: `PORT` or 7071. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Settings applied before `local.settings.json` (so they win over it). */
  env?: Record<string, string>;
  /** Where keys, timer status and the Event Hub owner id live. Default `$LOCAL_DATA_DIR/devhost`. */
  dataDir?: string;
  log?: HostLog;
  /** Event Hub load-balancing interval in ms (default 2000). */
  loadBalancingIntervalMs?: number;
  /** HTTP connection timeouts (tests shorten them); defaults in `defaultHttpTimeouts`. */
  httpTimeouts?: Partial<HttpTimeouts>;
}

export interface FunctionSummary {
  name: string;
  trigger: string;
  /** For HTTP functions: methods and URL template. */
  http?: { methods: string[]; url: string; authLevel: string };
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

export class HostStartError extends Error {
  override name = 'HostStartError';
}

function triggerOf(fn: RegisteredFunction): [string, RpcBindingInfo] {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) =>
    /trigger$/i.test(String(b.type)),
  );
  if (!entry) throw new HostStartError(`function "${fn.metadata.name}" has no trigger binding`);
  return entry;
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

function readOrCreateOwnerId(dataDir: string): string {
  const file = join(dataDir, 'eventhub-owner-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  }
  const id = `devhost-${randomUUID()}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function isDisabled(name: string, env: NodeJS.ProcessEnv): boolean {
  const value = env[`AzureWebJobs.${name}.Disabled`] ?? env[`AzureWebJobs_${name}_Disabled`];
  return value !== undefined && /^(true|1)$/i.test(value.trim());
}

export async function startHost(options: StartHostOptions): Promise<RunningHost> {
  const env = process.env;
  const appDir = resolve(options.appDir);
  const log = options.log ?? createConsoleLog();
  for (const [name, value] of Object.entries(options.env ?? {})) env[name] = value;
  applySettings(readLocalSettings(appDir), env);
  const hostConfig = readHostConfig(appDir);
  const dataDir = resolve(options.dataDir ?? join(env.LOCAL_DATA_DIR ?? '.local', 'devhost'));
  const resolveSetting = (value: string, where: string) =>
    resolveBindingExpression(value, env, where);

  const core = new FunctionsCore((level, message) => {
    if (level === 'warning' || level === 'error' || level === 'critical') log.warn(message);
  });
  const deactivate = activateCore(core);
  const timers: TimerRunner[] = [];
  const listeners: EventHubListener[] = [];
  const inFlight = new Set<Promise<InvocationResult>>();
  let accepting = true;
  let server: Server | undefined;

  const invoke = (fn: RegisteredFunction, input: InvocationInput): Promise<InvocationResult> => {
    const work = invokeFunction(core, fn, input, log);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
    return work;
  };

  async function shutdown(): Promise<void> {
    accepting = false;
    const closed = server
      ? new Promise<void>((done) => server?.close(() => done()))
      : Promise.resolve();
    server?.closeIdleConnections();
    await Promise.allSettled(timers.map((t) => t.stop()));
    await Promise.allSettled(listeners.map((l) => l.stop()));
    await Promise.allSettled([...inFlight]);
    try {
      const context: Record<string, unknown> = {
        hookData: core.appLevelHookData,
        appHookData: core.appHookData,
      };
      await core.runHooks('appTerminate', context);
    } catch (error) {
      log.warn(`appTerminate hook failed: ${(error as Error).message}`);
    }
    server?.closeAllConnections();
    await closed;
    deactivate();
  }

  try {
    forgetAppModules(appDir);
    for (const file of findEntryFiles(appDir)) {
      try {
        // Entry files are CommonJS loaded through the patched Module.prototype.require, as the worker does.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require(file);
      } catch (error) {
        throw new HostStartError(
          `loading ${file} failed: ${(error as Error).stack ?? String(error)}`,
        );
      }
    }
    await core.runHooks('appStart', {
      hookData: core.appLevelHookData,
      appHookData: core.appHookData,
      functionAppDirectory: appDir,
    });
    await core.programmingModel?.getCapabilities?.({
      RawHttpBodyBytes: 'true',
      RpcHttpTriggerMetadataRemoved: 'true',
      RpcHttpBodyOnly: 'true',
      IgnoreEmptyValuedRpcHttpHeaders: 'true',
      UseNullableValueDictionaryForHttp: 'true',
      TypedDataCollection: 'true',
    });
    core.lockRegistration();
    if (core.functions.size > 0 && !core.programmingModel) {
      throw new HostStartError('functions were registered but no programming model was set');
    }

    const httpFunctions: HttpFunction[] = [];
    const summaries: FunctionSummary[] = [];
    const timerByName = new Map<string, TimerRunner>();
    for (const fn of core.functions.values()) {
      const name = fn.metadata.name;
      const [triggerName, binding] = triggerOf(fn);
      const type = String(binding.type);
      if (isDisabled(name, env)) {
        log.info(`Function '${name}' is disabled by its AzureWebJobs.${name}.Disabled setting`);
        continue;
      }
      if (isHttpTriggerType(type)) {
        httpFunctions.push(toHttpFunction(fn, resolveSetting));
        summaries.push({ name, trigger: 'http' });
      } else if (type.toLowerCase() === 'timertrigger') {
        const schedule = parseSchedule(
          resolveSetting(text(binding.schedule, ''), `function "${name}" schedule`),
          env.WEBSITE_TIME_ZONE,
        );
        const retry = toRetryPolicy(fn.metadata.retryOptions, name);
        const runner = new TimerRunner({
          name,
          schedule,
          runOnStartup: binding.runOnStartup === true,
          useMonitor: binding.useMonitor !== false,
          statusDir: join(dataDir, 'timers'),
          onSkip: () => log.info(`'${name}' is still running; skipping this occurrence`),
          run: async (info) => {
            await invokeWithRetries({
              policy: retry,
              input: { inputData: [{ name: triggerName, data: { json: JSON.stringify(info) } }] },
              invoke: (input) => invoke(fn, input),
              sleep: (ms) =>
                new Promise((done) => {
                  const timer = setTimeout(() => done(accepting), ms);
                  if (!accepting) {
                    clearTimeout(timer);
                    done(false);
                  }
                }),
            });
          },
        });
        timers.push(runner);
        timerByName.set(name.toLowerCase(), runner);
        summaries.push({ name, trigger: `timer (${schedule.text})` });
      } else if (type.toLowerCase() === 'eventhubtrigger') {
        const connectionName = text(binding.connection, '');
        const connectionString = env[connectionName];
        if (!connectionName || !connectionString) {
          throw new HostStartError(
            `function "${name}": the Event Hub connection setting "${connectionName}" is not set`,
          );
        }
        const storage = env.AzureWebJobsStorage;
        if (!storage)
          throw new HostStartError(
            `function "${name}": AzureWebJobsStorage is not set (checkpoints)`,
          );
        const cardinality = text(binding.cardinality, 'many').toLowerCase() as Cardinality;
        if (cardinality !== 'many' && cardinality !== 'one') {
          throw new HostStartError(`function "${name}": cardinality must be "many" or "one"`);
        }
        const dataType =
          binding.dataType === 'string' || binding.dataType === 'binary'
            ? binding.dataType
            : undefined;
        const eventHubName =
          typeof binding.eventHubName === 'string' ? binding.eventHubName : undefined;
        const consumerGroup =
          typeof binding.consumerGroup === 'string' ? binding.consumerGroup : '$Default';
        listeners.push(
          new EventHubListener({
            trigger: {
              fn,
              triggerName,
              connectionString,
              connectionSettingName: connectionName,
              eventHubName: eventHubName
                ? resolveSetting(eventHubName, `function "${name}" eventHubName`)
                : undefined,
              consumerGroup: resolveSetting(consumerGroup, `function "${name}" consumerGroup`),
              cardinality,
              dataType,
              retry: toRetryPolicy(fn.metadata.retryOptions, name),
            },
            hostOptions: hostConfig.eventHubs,
            storageConnectionString: storage,
            ownerId: readOrCreateOwnerId(dataDir),
            loadBalancingIntervalMs: options.loadBalancingIntervalMs ?? 2000,
            log,
            invoke,
          }),
        );
        summaries.push({ name, trigger: 'eventHub' });
      } else {
        log.warn(`Function '${name}': trigger type "${type}" is not supported by devhost; skipped`);
      }
    }

    const keys = loadOrCreateKeys(dataDir, env);
    const sortedHttp = sortHttpFunctions(httpFunctions);
    const triggerNonHttp = (name: string): Promise<boolean> => {
      const runner = timerByName.get(name.toLowerCase());
      return Promise.resolve(runner ? runner.trigger() : false);
    };
    server = createHttpServer({
      functions: sortedHttp,
      routePrefix: hostConfig.routePrefix,
      keys,
      log,
      invoke,
      triggerNonHttp,
      accepting: () => accepting,
      maxRequestBodyBytes: maxRequestBodyBytesFrom(env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT),
      timeouts: options.httpTimeouts,
    });
    const hostname = options.hostname ?? '127.0.0.1';
    const requestedPort = options.port ?? (env.PORT ? Number(env.PORT) : 7071);
    if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
      throw new HostStartError(
        `port "${String(options.port ?? env.PORT)}" is not a valid port number`,
      );
    }
    const port = await listen(server, requestedPort, hostname);
    const url = `http://${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
    const prefix = hostConfig.routePrefix ? `/${hostConfig.routePrefix}` : '';
    for (const fn of sortedHttp) {
      const summary = summaries.find((s) => s.name === fn.name);
      if (summary) {
        summary.http = {
          methods: fn.methods.size === 0 ? ['*'] : [...fn.methods],
          url: `${url}${prefix}/${fn.route.template.replace(/^\/+/, '')}`,
          authLevel: fn.authLevel,
        };
      }
    }
    await Promise.all(listeners.map((l) => l.start()));
    timers.forEach((t) => t.start());

    let stopping: Promise<void> | undefined;
    return {
      url,
      port,
      key: keys.functionKey,
      masterKey: keys.masterKey,
      functions: summaries,
      trigger: triggerNonHttp,
      stop: () => (stopping ??= shutdown()),
    };
  } catch (error) {
    await shutdown().catch(() => undefined);
    throw error;
  }
}
