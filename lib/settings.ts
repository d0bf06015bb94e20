/**
 * Every app setting the back end reads, validated in one place. The same names appear in
 * `local.settings.json.example`, the local stack and `infra/` (Bicep app settings).
 *
 * Errors name the setting and what was expected; they never repeat a value, because several
 * settings are secrets (connection strings carry keys).
 */
import { z } from 'zod';
import {
  parseConnectionString,
  parseEventHubConnectionString,
  parseIotHubConnectionString,
} from './connection-string';
import { deviceIdPrefixPattern } from './iothub/ids';

/** Setting names, shared by binding expressions (`%NAME%`, `connection: NAME`) and code. */
export const SettingNames = {
  iotHubConnectionString: 'IOTHUB_CONNECTION_STRING',
  iotHubHostName: 'IOTHUB_HOST_NAME',
  eventsConnection: 'IOTHUB_EVENTS_CONNECTION',
  /** The trigger's `eventHubName` (`%IOTHUB_EVENTS_NAME%`); must equal the connection's EntityPath. */
  eventsName: 'IOTHUB_EVENTS_NAME',
  eventsConsumerGroup: 'IOTHUB_EVENTS_CONSUMER_GROUP',
  storage: 'AzureWebJobsStorage',
  storageTableServiceUri: 'AzureWebJobsStorage__tableServiceUri',
  storageClientId: 'AzureWebJobsStorage__clientId',
  alertThreshold: 'TELEMETRY_ALERT_THRESHOLD',
  deadLetterMaxBodyBytes: 'TELEMETRY_DEADLETTER_MAX_BODY_BYTES',
  retentionDays: 'TELEMETRY_RETENTION_DAYS',
  purgeSchedule: 'TELEMETRY_PURGE_SCHEDULE',
  stallSeconds: 'TELEMETRY_STALL_SECONDS',
  feedbackSchedule: 'FEEDBACK_SCHEDULE',
  feedbackDrainSeconds: 'FEEDBACK_DRAIN_SECONDS',
  simulatorEnabled: 'SIMULATOR_ENABLED',
  simulatorSchedule: 'SIMULATOR_SCHEDULE',
  simulatorDeviceCount: 'SIMULATOR_DEVICE_COUNT',
  simulatorDevicePrefix: 'SIMULATOR_DEVICE_PREFIX',
  simulatorAutoProvision: 'SIMULATOR_AUTO_PROVISION',
  simulatorConnectRate: 'SIMULATOR_CONNECTS_PER_SECOND',
} as const;

/** Settings whose values must never be printed. */
const secretSettings: ReadonlySet<string> = new Set([
  SettingNames.iotHubConnectionString,
  SettingNames.eventsConnection,
  SettingNames.storage,
]);

export type IotHubAccess =
  | { kind: 'connectionString'; connectionString: string; hostName: string }
  /** Entra ID through DefaultAzureCredential (AZURE_CLIENT_ID selects a user-assigned identity). */
  | { kind: 'identity'; hostName: string };

export type StorageAccess =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; tableServiceUri: string; clientId?: string };

export interface Settings {
  iotHub: IotHubAccess;
  events: { connectionSettingName: string; consumerGroup: string };
  storage: StorageAccess;
  telemetry: {
    alertThreshold: number;
    deadLetterMaxBodyBytes: number;
    retentionDays: number;
    purgeSchedule: string;
    stallSeconds: number;
  };
  feedback: { schedule: string; drainSeconds: number };
  simulator: {
    enabled: boolean;
    schedule: string;
    deviceCount: number;
    devicePrefix: string;
    autoProvision: boolean;
    connectsPerSecond: number;
  };
}

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid app settings:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const booleanText = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0'], 'true or false'))
  .transform((v) => v === 'true' || v === '1');

const intText = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, `a whole number from ${min} to ${max}`)
        .max(max, `a whole number from ${min} to ${max}`),
    );

const numberText = z
  .string()
  .trim()
  .refine((v) => v !== '' && Number.isFinite(Number(v)), 'a number')
  .transform(Number);

/** Six fields (seconds first): the NCRONTAB form Azure Functions timers use. */
const ncrontab = z
  .string()
  .trim()
  .refine(
    (v) => v.split(/\s+/).length === 6,
    'a 6-field NCRONTAB expression ("{s} {m} {h} {d} {M} {dow}")',
  );

const deviceIdPrefix = z
  .string()
  .regex(deviceIdPrefixPattern(100), 'a device id prefix of 1 to 100 IoT Hub device id characters');

/**
 * How a rejected value is shown in a problem: quoted and shortened for ordinary settings, never
 * for secrets (connection strings carry keys).
 */
export function describeValue(name: string, raw: string): string {
  if (isSecretSetting(name)) return 'a value that is not shown (it may hold a key)';
  const text = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw;
  return JSON.stringify(text);
}

/** The one shape of a problem: `NAME must be <expected>, got <value>`. */
export function settingProblem(name: string, expected: string, raw: string): string {
  return `${name} must be ${expected}, got ${describeValue(name, raw)}`;
}

/**
 * Validate one optional setting with a default. Issues name the setting, say what is expected
 * and show the offending value (these settings are never secrets).
 */
function read<T>(
  env: Env,
  name: string,
  schema: z.ZodType<T, string>,
  fallback: string,
  problems: string[],
): T {
  const raw = env[name];
  const result = schema.safeParse(raw === undefined || raw.trim() === '' ? fallback : raw);
  if (result.success) return result.data;
  const expected = [...new Set(result.error.issues.map((i) => i.message))].join('; ');
  problems.push(settingProblem(name, expected, raw ?? ''));
  return schema.parse(fallback);
}

function connectionProblem(name: string, what: string, check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    // The parser's messages describe the shape only, never the value.
    return `${name} must be ${what} (${(error as Error).message}), got ${describeValue(name, '')}`;
  }
}

function readIotHub(env: Env, problems: string[]): IotHubAccess {
  const connectionString = env[SettingNames.iotHubConnectionString]?.trim();
  const hostName = env[SettingNames.iotHubHostName]?.trim();
  if (connectionString) {
    const problem = connectionProblem(
      SettingNames.iotHubConnectionString,
      'an IoT Hub connection string',
      () => parseIotHubConnectionString(connectionString),
    );
    if (problem) {
      problems.push(problem);
      return { kind: 'connectionString', connectionString: '', hostName: '' };
    }
    return {
      kind: 'connectionString',
      connectionString,
      hostName: parseIotHubConnectionString(connectionString).hostName,
    };
  }
  if (hostName) {
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(hostName)) {
      problems.push(
        settingProblem(
          SettingNames.iotHubHostName,
          'a host name such as myhub.azure-devices.net',
          hostName,
        ),
      );
    }
    return { kind: 'identity', hostName };
  }
  problems.push(
    `${SettingNames.iotHubConnectionString} is missing: expected an IoT Hub connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…), or set ${SettingNames.iotHubHostName} to use a managed identity`,
  );
  return { kind: 'connectionString', connectionString: '', hostName: '' };
}

function readEvents(env: Env, problems: string[]): void {
  const value = env[SettingNames.eventsConnection]?.trim();
  if (!value) {
    problems.push(
      `${SettingNames.eventsConnection} is missing: expected the IoT Hub's Event Hub-compatible connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=…)`,
    );
    return;
  }
  const problem = connectionProblem(
    SettingNames.eventsConnection,
    "the IoT Hub's Event Hub-compatible connection string",
    () => parseEventHubConnectionString(value),
  );
  if (problem) {
    problems.push(problem);
    return;
  }
  // The host resolves %IOTHUB_EVENTS_NAME% itself; a name that disagrees with the connection's
  // EntityPath would read a different hub than the one configured.
  const name = env[SettingNames.eventsName]?.trim();
  const entityPath = parseEventHubConnectionString(value).entityPath;
  if (name && name !== entityPath) {
    problems.push(
      `${SettingNames.eventsName} does not match the EntityPath of ${SettingNames.eventsConnection}: expected the same Event Hub-compatible name`,
    );
  }
}

function readStorage(env: Env, problems: string[]): StorageAccess {
  const connectionString = env[SettingNames.storage]?.trim();
  if (connectionString) {
    const problem = connectionProblem(SettingNames.storage, 'a storage connection string', () => {
      const parts = parseConnectionString(connectionString);
      if (parts.UseDevelopmentStorage !== 'true' && !parts.AccountName && !parts.TableEndpoint) {
        throw new Error(
          'expected a storage connection string (AccountName=…;AccountKey=… or UseDevelopmentStorage=true)',
        );
      }
    });
    if (problem) problems.push(problem);
    return { kind: 'connectionString', connectionString };
  }
  const tableServiceUri = env[SettingNames.storageTableServiceUri]?.trim();
  if (tableServiceUri) {
    if (!/^https?:\/\/\S+$/.test(tableServiceUri)) {
      problems.push(
        settingProblem(
          SettingNames.storageTableServiceUri,
          'an https:// table service URI',
          tableServiceUri,
        ),
      );
    }
    const clientId = env[SettingNames.storageClientId]?.trim();
    return { kind: 'identity', tableServiceUri, ...(clientId ? { clientId } : {}) };
  }
  problems.push(
    `${SettingNames.storage} is missing: expected a storage connection string, or ${SettingNames.storageTableServiceUri} for a managed identity`,
  );
  return { kind: 'connectionString', connectionString: '' };
}

/** Read and validate every setting; throws one SettingsError listing all problems. */
export function loadSettings(env: Env = process.env): Settings {
  const problems: string[] = [];
  const iotHub = readIotHub(env, problems);
  readEvents(env, problems);
  const storage = readStorage(env, problems);
  const n = SettingNames;
  const settings: Settings = {
    iotHub,
    events: {
      connectionSettingName: n.eventsConnection,
      consumerGroup: read(
        env,
        n.eventsConsumerGroup,
        z
          .string()
          .trim()
          .regex(/^[A-Za-z0-9$._-]{1,50}$/, 'a consumer group name (letters, digits, $._-)'),
        '$Default',
        problems,
      ),
    },
    storage,
    telemetry: {
      alertThreshold: read(env, n.alertThreshold, numberText, '15', problems),
      deadLetterMaxBodyBytes: read(
        env,
        n.deadLetterMaxBodyBytes,
        intText(0, 32768),
        '4096',
        problems,
      ),
      // Up to 100 years: beyond that the inverted-time keys would clamp.
      retentionDays: read(env, n.retentionDays, intText(1, 36500), '7', problems),
      purgeSchedule: read(env, n.purgeSchedule, ncrontab, '0 */5 * * * *', problems),
      stallSeconds: read(env, n.stallSeconds, intText(1, 86400), '60', problems),
    },
    feedback: {
      schedule: read(env, n.feedbackSchedule, ncrontab, '*/10 * * * * *', problems),
      drainSeconds: read(env, n.feedbackDrainSeconds, intText(1, 240), '5', problems),
    },
    simulator: {
      enabled: read(env, n.simulatorEnabled, booleanText, 'false', problems),
      schedule: read(env, n.simulatorSchedule, ncrontab, '*/10 * * * * *', problems),
      deviceCount: read(env, n.simulatorDeviceCount, intText(0, 10000), '3', problems),
      devicePrefix: read(env, n.simulatorDevicePrefix, deviceIdPrefix, 'sim', problems),
      autoProvision: read(env, n.simulatorAutoProvision, booleanText, 'true', problems),
      connectsPerSecond: read(env, n.simulatorConnectRate, intText(1, 1000), '100', problems),
    },
  };
  if (problems.length > 0) throw new SettingsError(problems);
  return settings;
}

/** True for settings whose values are secrets and must never be logged. */
export function isSecretSetting(name: string): boolean {
  return secretSettings.has(name);
}
