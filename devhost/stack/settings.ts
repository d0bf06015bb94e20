/**
 * The local stack's app settings: one merge, one validation, before any service starts.
 *
 * Precedence, for every setting: the environment, then `local.settings.json`, then the stack's
 * defaults (the connection strings of the services it starts, the simulator on), then
 * `local.settings.json.example`. Each value remembers where it came from, so the summary can say
 * so and a problem can name the file to fix. Validation is `lib/settings.ts`'s `loadSettings`,
 * the same schema the app runs, so the stack refuses exactly what the app would.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { wellKnownHubIdentity } from '@iot-hub-functions/local-iothub';
import { parseConnectionString } from '../../lib/connection-string';
import { loadSettings, SettingNames, settingProblem, SettingsError } from '../../lib/settings';
import { AppConfigError, readLocalSettings } from '../host/app-config';
import { azuriteKey } from './azurite';

export type SettingSource = 'environment' | 'local.settings.json' | 'stack' | 'example';

/** The connection strings of the services the stack started. */
export interface StackServices {
  storage: string;
  service: string;
  events: string;
  eventsName: string;
}

/**
 * What the services' connection strings look like on the default ports. Used to validate before
 * anything starts; the real ones (ephemeral ports) replace them once the services are up.
 */
export function defaultServices(): StackServices {
  const owner = wellKnownHubIdentity.policies.find((p) => p.name === 'iothubowner');
  const service = wellKnownHubIdentity.policies.find((p) => p.name === 'service');
  const hub = wellKnownHubIdentity.hubName;
  return {
    storage: 'UseDevelopmentStorage=true',
    service: `HostName=localhost:4443;SharedAccessKeyName=iothubowner;SharedAccessKey=${owner?.primaryKey ?? ''}`,
    events: `Endpoint=sb://localhost:5672/;SharedAccessKeyName=service;SharedAccessKey=${service?.primaryKey ?? ''};EntityPath=${hub};UseDevelopmentEmulator=true`,
    eventsName: hub,
  };
}

/** Keys anyone may print: the local hub's well-known policies and Azurite's account key. */
const wellKnownKeys: ReadonlySet<string> = new Set([
  azuriteKey,
  ...wellKnownHubIdentity.policies.flatMap((p) => [p.primaryKey, p.secondaryKey]),
]);

/** True when a connection string carries no key, or only a well-known local one. */
export function isWellKnownConnection(value: string): boolean {
  let parts: Record<string, string>;
  try {
    parts = parseConnectionString(value);
  } catch {
    return false;
  }
  const keys = [parts.SharedAccessKey, parts.AccountKey, parts.SharedAccessSignature].filter(
    (k): k is string => k !== undefined,
  );
  return keys.every((k) => wellKnownKeys.has(k));
}

/** True for a connection string to the local services: a well-known key, or Azurite's shortcut. */
export function namesLocalService(value: string): boolean {
  if (/^\s*UseDevelopmentStorage=true\s*;?\s*$/i.test(value)) return true;
  let parts: Record<string, string>;
  try {
    parts = parseConnectionString(value);
  } catch {
    return false;
  }
  const key = parts.SharedAccessKey ?? parts.AccountKey;
  return key !== undefined && wellKnownKeys.has(key);
}

/** The connection string with every key or signature replaced, unless the keys are well known. */
export function redactConnection(value: string): string {
  if (isWellKnownConnection(value)) return value;
  return value.replace(
    /((?:^|;)\s*(?:SharedAccessKey|AccountKey|SharedAccessSignature|sig)\s*=)[^;]*/gi,
    '$1<hidden>',
  );
}

export interface ResolvedSettings {
  /** Every app setting the stack knows of, merged by precedence. */
  values: Record<string, string>;
  sources: Record<string, SettingSource>;
  /** True when IOTHUB_CONNECTION_STRING points at a hub of the user's, not the local one. */
  userHub: boolean;
}

export interface SettingsInput {
  env: NodeJS.ProcessEnv;
  local: Record<string, string>;
  example: Record<string, string>;
}

function explicitValue(input: SettingsInput, name: string): string | undefined {
  return input.env[name] ?? input.local[name];
}

/** The stack's defaults, which depend on whether the user named a hub of their own. */
function stackDefaults(input: SettingsInput, services: StackServices): Record<string, string> {
  const hub = explicitValue(input, SettingNames.iotHubConnectionString);
  const userHub = hub !== undefined && !namesLocalService(hub);
  const events = explicitValue(input, SettingNames.eventsConnection);
  let eventsName = services.eventsName;
  if (events !== undefined) {
    // A user's events connection names its hub; the default name must agree with it.
    try {
      eventsName = parseConnectionString(events).EntityPath ?? eventsName;
    } catch {
      // Malformed: validation names IOTHUB_EVENTS_CONNECTION.
    }
  }
  return {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    AzureWebJobsFeatureFlags: 'EnableWorkerIndexing',
    [SettingNames.storage]: services.storage,
    [SettingNames.iotHubConnectionString]: services.service,
    [SettingNames.eventsConnection]: services.events,
    [SettingNames.eventsName]: eventsName,
    [SettingNames.eventsConsumerGroup]: '$Default',
    [SettingNames.simulatorEnabled]: 'true',
    // Creating identities in someone's real hub must be asked for explicitly.
    [SettingNames.simulatorAutoProvision]: userHub ? 'false' : 'true',
  };
}

const serviceSettings: readonly string[] = [
  SettingNames.storage,
  SettingNames.iotHubConnectionString,
  SettingNames.eventsConnection,
];

/**
 * `local.settings.json` without connection strings that name the local services by their
 * well-known keys (as the example does): those mean "the service the stack started", whose
 * address the stack knows better (ephemeral ports, another data folder).
 */
function withoutLocalServices(local: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(local).filter(
      ([name, value]) => !(serviceSettings.includes(name) && namesLocalService(value)),
    ),
  );
}

/** Merges the layers by precedence and records each value's source. */
export function mergeSettings(input: SettingsInput, services: StackServices): ResolvedSettings {
  const local = withoutLocalServices(input.local);
  const defaults = stackDefaults({ ...input, local }, services);
  const layers: [SettingSource, Record<string, string | undefined>][] = [
    ['example', input.example],
    ['stack', defaults],
    ['local.settings.json', local],
  ];
  const values: Record<string, string> = {};
  const sources: Record<string, SettingSource> = {};
  for (const [source, layer] of layers) {
    for (const [name, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      values[name] = value;
      sources[name] = source;
    }
  }
  // The environment wins for every setting any layer knows, and for the app's own names.
  const known = new Set([...Object.keys(values), ...Object.values(SettingNames)]);
  for (const name of known) {
    const value = input.env[name];
    if (value === undefined) continue;
    values[name] = value;
    sources[name] = 'environment';
  }
  const hub = values[SettingNames.iotHubConnectionString] ?? '';
  return { values, sources, userHub: !namesLocalService(hub) };
}

export class StackSettingsError extends Error {
  override name = 'StackSettingsError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/** Where a problem's setting came from, as a suffix (a problem starts with the setting's name). */
function withSource(problem: string, sources: Record<string, SettingSource>): string {
  const name = /^(\S+)/.exec(problem)?.[1] ?? '';
  const source = sources[name];
  if (source === 'environment') return `${problem} (set in the environment)`;
  if (source === 'local.settings.json') return `${problem} (set in local.settings.json)`;
  return problem;
}

/** Validates the merged settings with the app's own schema; throws naming every problem. */
export function validateSettings(resolved: ResolvedSettings): void {
  try {
    loadSettings(resolved.values);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    throw new StackSettingsError(error.problems.map((p) => withSource(p, resolved.sources)));
  }
}

/** `local.settings.json.example` Values: the defaults for settings nobody set. */
export function readExampleSettings(repoRoot: string): Record<string, string> {
  const file = join(repoRoot, 'local.settings.json.example');
  if (!existsSync(file)) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed.Values ?? {})) {
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

const portText = z
  .string()
  .trim()
  .regex(/^\d+$/, 'a port number from 0 to 65535')
  .transform(Number)
  .pipe(z.number().max(65535, 'a port number from 0 to 65535'));

/** `PORT` (default 7071); 0 under `LOCAL_STACK_EPHEMERAL_PORTS=1`. */
export function readStackPort(env: NodeJS.ProcessEnv): number {
  if (env.LOCAL_STACK_EPHEMERAL_PORTS === '1') return 0;
  const raw = env.PORT;
  if (raw === undefined || raw.trim() === '') return 7071;
  const result = portText.safeParse(raw);
  if (result.success) return result.data;
  throw new StackSettingsError([
    `${settingProblem('PORT', 'a port number from 0 to 65535', raw)} (set in the environment)`,
  ]);
}

/** The inputs of the merge: the user's file (or a clear error about it) and the example. */
export function readSettingsInput(repoRoot: string, env: NodeJS.ProcessEnv): SettingsInput {
  let local: Record<string, string>;
  try {
    local = readLocalSettings(repoRoot);
  } catch (error) {
    if (error instanceof AppConfigError) throw new StackSettingsError([error.message]);
    throw error;
  }
  return { env, local, example: readExampleSettings(repoRoot) };
}

/**
 * Everything the stack checks before it starts a process: the port, `local.settings.json` and
 * every app setting as the app will see it. Returns the input for the final merge.
 */
export function checkStackSettings(repoRoot: string, env: NodeJS.ProcessEnv): SettingsInput {
  const input = readSettingsInput(repoRoot, env);
  validateSettings(mergeSettings(input, defaultServices()));
  return input;
}
