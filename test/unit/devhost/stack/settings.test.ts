import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SettingsInput } from '../../../../devhost/stack/settings';
import {
  checkStackSettings,
  defaultServices,
  mergeSettings,
  readStackPort,
  redactConnection,
  StackSettingsError,
  validateSettings,
} from '../../../../devhost/stack/settings';
import { coreToolsMissing, describeStack } from '../../../../devhost/stack/summary';
import { shouldProvision } from '../../../../simulator/cli/simulate';

const userKey = 'dXNlci1zZWNyZXQta2V5LW5vdC13ZWxsLWtub3duIQ==';
const azureHub = `HostName=myhub.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=${userKey}`;
const azureEvents = `Endpoint=sb://ihsuprod.servicebus.windows.net/;SharedAccessKeyName=service;SharedAccessKey=${userKey};EntityPath=myhub`;
const services = {
  storage: 'UseDevelopmentStorage=true',
  service: defaultServices().service.replace('4443', '40001'),
  events: defaultServices().events.replace('5672', '40002'),
  eventsName: 'local-iothub',
};

function input(parts: Partial<SettingsInput>): SettingsInput {
  return { env: {}, local: {}, example: {}, ...parts };
}

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StackSettingsError);
    return (error as StackSettingsError).problems;
  }
  throw new Error('expected a StackSettingsError');
}

describe('stack settings precedence', () => {
  it('takes the environment over local.settings.json over the stack over the example', () => {
    const resolved = mergeSettings(
      input({
        env: { TELEMETRY_ALERT_THRESHOLD: '20', PATH: '/bin' },
        local: {
          TELEMETRY_ALERT_THRESHOLD: '18',
          IOTHUB_CONNECTION_STRING: azureHub,
          SIMULATOR_ENABLED: 'false',
        },
        example: {
          TELEMETRY_ALERT_THRESHOLD: '15',
          SIMULATOR_ENABLED: 'true',
          FEEDBACK_DRAIN_SECONDS: '5',
        },
      }),
      services,
    );
    expect(resolved.values.TELEMETRY_ALERT_THRESHOLD).toBe('20');
    expect(resolved.sources.TELEMETRY_ALERT_THRESHOLD).toBe('environment');
    // These were overridden by the stack before: local.settings.json now wins.
    expect(resolved.values.IOTHUB_CONNECTION_STRING).toBe(azureHub);
    expect(resolved.sources.IOTHUB_CONNECTION_STRING).toBe('local.settings.json');
    expect(resolved.values.SIMULATOR_ENABLED).toBe('false');
    expect(resolved.sources.SIMULATOR_ENABLED).toBe('local.settings.json');
    expect(resolved.values.IOTHUB_EVENTS_CONNECTION).toBe(services.events);
    expect(resolved.sources.IOTHUB_EVENTS_CONNECTION).toBe('stack');
    expect(resolved.values.FEEDBACK_DRAIN_SECONDS).toBe('5');
    expect(resolved.sources.FEEDBACK_DRAIN_SECONDS).toBe('example');
    // Only app settings are merged, not the whole environment.
    expect(resolved.values.PATH).toBeUndefined();
  });

  it("reads the example's local connection strings in local.settings.json as the stack's services", () => {
    const example = defaultServices();
    const resolved = mergeSettings(
      input({
        local: {
          IOTHUB_CONNECTION_STRING: example.service,
          IOTHUB_EVENTS_CONNECTION: example.events,
          AzureWebJobsStorage: 'UseDevelopmentStorage=true',
          TELEMETRY_ALERT_THRESHOLD: '12',
        },
      }),
      { ...services, storage: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1' },
    );
    // The stack's real addresses (ephemeral ports here), not the example's default ports.
    expect(resolved.values.IOTHUB_CONNECTION_STRING).toBe(services.service);
    expect(resolved.sources.IOTHUB_CONNECTION_STRING).toBe('stack');
    expect(resolved.values.IOTHUB_EVENTS_CONNECTION).toBe(services.events);
    expect(resolved.values.AzureWebJobsStorage).toMatch(/^DefaultEndpointsProtocol=http/);
    expect(resolved.values.TELEMETRY_ALERT_THRESHOLD).toBe('12');
    expect(resolved.userHub).toBe(false);
  });

  it('does not auto-provision simulator devices on a hub of the user unless asked', () => {
    const azure = mergeSettings(input({ env: { IOTHUB_CONNECTION_STRING: azureHub } }), services);
    expect(azure.userHub).toBe(true);
    expect(azure.values.SIMULATOR_AUTO_PROVISION).toBe('false');
    const asked = mergeSettings(
      input({
        env: { IOTHUB_CONNECTION_STRING: azureHub },
        local: { SIMULATOR_AUTO_PROVISION: 'true' },
      }),
      services,
    );
    expect(asked.values.SIMULATOR_AUTO_PROVISION).toBe('true');
    const local = mergeSettings(input({}), services);
    expect(local.userHub).toBe(false);
    expect(local.values.SIMULATOR_AUTO_PROVISION).toBe('true');
  });

  it("names the events hub after the user's events connection, so a real hub validates", () => {
    const resolved = mergeSettings(
      input({ env: { IOTHUB_CONNECTION_STRING: azureHub, IOTHUB_EVENTS_CONNECTION: azureEvents } }),
      services,
    );
    expect(resolved.values.IOTHUB_EVENTS_NAME).toBe('myhub');
    expect(() => validateSettings(resolved)).not.toThrow();
  });
});

describe('stack settings validation', () => {
  it('names the setting, the rule, the value and where it was set', () => {
    const resolved = mergeSettings(
      input({
        env: { TELEMETRY_ALERT_THRESHOLD: 'high' },
        local: { SIMULATOR_SCHEDULE: '*/5 * * * *' },
      }),
      services,
    );
    expect(problemsOf(() => validateSettings(resolved))).toEqual([
      'TELEMETRY_ALERT_THRESHOLD must be a number, got "high" (set in the environment)',
      'SIMULATOR_SCHEDULE must be a 6-field NCRONTAB expression ("{s} {m} {h} {d} {M} {dow}"), got "*/5 * * * *" (set in local.settings.json)',
    ]);
  });

  it('never shows the value of a connection string', () => {
    const resolved = mergeSettings(
      input({ env: { IOTHUB_CONNECTION_STRING: `HostName=h;SharedAccessKey=${userKey}` } }),
      services,
    );
    const problems = problemsOf(() => validateSettings(resolved));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^IOTHUB_CONNECTION_STRING must be an IoT Hub connection string/);
    expect(problems.join('\n')).not.toContain(userKey);
  });

  it('rejects PORT=abc by name', () => {
    expect(problemsOf(() => readStackPort({ PORT: 'abc' }))).toEqual([
      'PORT must be a port number from 0 to 65535, got "abc" (set in the environment)',
    ]);
    expect(problemsOf(() => readStackPort({ PORT: '70000' }))[0]).toMatch(/^PORT must be/);
    expect(readStackPort({ PORT: '8080' })).toBe(8080);
    expect(readStackPort({})).toBe(7071);
    expect(readStackPort({ PORT: 'abc', LOCAL_STACK_EPHEMERAL_PORTS: '1' })).toBe(0);
  });

  it('names the line and column of bad JSON in local.settings.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stack-settings-'));
    try {
      writeFileSync(join(dir, 'local.settings.json'), '{\n  "Values": {\n    "A": "1",\n  }\n}\n');
      const problems = problemsOf(() => checkStackSettings(dir, {}));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/local\.settings\.json .* is not valid JSON at line 4, column 3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the stack summary', () => {
  const base = {
    apiUrl: 'http://127.0.0.1:7071',
    functionKey: 'fkey',
    storageConnectionString: 'UseDevelopmentStorage=true',
    caBundle: '/tmp/ca-bundle.pem',
  };

  it("hides the key of a user's connection string and names where it came from", () => {
    const text = describeStack({
      ...base,
      serviceConnectionString: azureHub,
      eventsConnectionString: azureEvents,
      sources: {
        IOTHUB_CONNECTION_STRING: 'environment',
        IOTHUB_EVENTS_CONNECTION: 'local.settings.json',
      },
    }).join('\n');
    expect(text).not.toContain(userKey);
    expect(text).toContain(
      'HostName=myhub.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=<hidden>   (from the environment)',
    );
    expect(text).toMatch(/EntityPath=myhub +\(from local\.settings\.json\)/);
  });

  it('prints the well-known local credentials whole', () => {
    const text = describeStack({
      ...base,
      serviceConnectionString: services.service,
      eventsConnectionString: services.events,
      sources: {},
    }).join('\n');
    expect(text).toContain(`${services.service}   (started by the stack)`);
    expect(redactConnection(services.events)).toBe(services.events);
  });
});

describe('the device explorer URL', () => {
  it('opens the page with the key in the fragment (never sent to a server)', () => {
    const text = describeStack({
      apiUrl: 'http://127.0.0.1:7071',
      functionKey: 'k+y/=',
      serviceConnectionString: 'HostName=localhost:4443;SharedAccessKeyName=a;SharedAccessKey=b',
      eventsConnectionString: 'Endpoint=sb://localhost/',
      storageConnectionString: 'UseDevelopmentStorage=true',
      caBundle: '/tmp/ca-bundle.pem',
    });
    expect(text).toContain(
      '  Device explorer:          http://127.0.0.1:7071/api/explorer/#key=k%2By%2F%3D',
    );
  });
});

describe('simulate provisioning', () => {
  it('creates identities on the local hub by default and on a user hub only when asked', () => {
    expect(shouldProvision(undefined, {}, services.service)).toBe(true);
    expect(shouldProvision(undefined, {}, azureHub)).toBe(false);
    expect(shouldProvision(undefined, { SIMULATOR_AUTO_PROVISION: 'true' }, azureHub)).toBe(true);
    expect(shouldProvision(true, {}, azureHub)).toBe(true);
    expect(shouldProvision(false, {}, services.service)).toBe(false);
  });
});

describe('start:func without Core Tools', () => {
  it.each([
    ['darwin', /brew install azure-functions-core-tools@4/],
    ['win32', /winget install Microsoft\.Azure\.FunctionsCoreTools/],
    ['linux', /apt-get install azure-functions-core-tools-4/],
  ] as const)('says how to install it on %s', (platform, expected) => {
    expect(coreToolsMissing(platform)).toMatch(expected);
  });
});
