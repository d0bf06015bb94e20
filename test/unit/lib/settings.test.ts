import { loadSettings, SettingsError, isSecretSetting } from '../../../lib/settings';

const secretKey = 'c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw';
const valid = {
  IOTHUB_CONNECTION_STRING: `HostName=myhub.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey=${secretKey}`,
  IOTHUB_EVENTS_CONNECTION: `Endpoint=sb://ihsuprod.servicebus.windows.net/;SharedAccessKeyName=service;SharedAccessKey=${secretKey};EntityPath=myhub`,
  AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${secretKey};EndpointSuffix=core.windows.net`,
};

function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as SettingsError).problems;
  }
  throw new Error('expected loadSettings to throw');
}

describe('loadSettings', () => {
  it('parses a valid environment and applies defaults', () => {
    const s = loadSettings(valid);
    expect(s.iotHub).toEqual({
      kind: 'connectionString',
      connectionString: valid.IOTHUB_CONNECTION_STRING,
      hostName: 'myhub.azure-devices.net',
    });
    expect(s.events).toEqual({
      connectionSettingName: 'IOTHUB_EVENTS_CONNECTION',
      consumerGroup: '$Default',
    });
    expect(s.storage).toEqual({
      kind: 'connectionString',
      connectionString: valid.AzureWebJobsStorage,
    });
    expect(s.telemetry).toEqual({
      alertThreshold: 15,
      deadLetterMaxBodyBytes: 4096,
      retentionDays: 7,
      purgeSchedule: '0 */5 * * * *',
      stallSeconds: 60,
    });
    expect(s.feedback).toEqual({ schedule: '*/10 * * * * *', drainSeconds: 5 });
    expect(s.simulator).toEqual({
      enabled: false,
      schedule: '*/10 * * * * *',
      deviceCount: 3,
      devicePrefix: 'sim',
      autoProvision: true,
      connectsPerSecond: 100,
    });
  });

  it('reads explicit values', () => {
    const s = loadSettings({
      ...valid,
      IOTHUB_EVENTS_CONSUMER_GROUP: 'telemetry-fn',
      TELEMETRY_ALERT_THRESHOLD: '12.5',
      TELEMETRY_RETENTION_DAYS: '30',
      TELEMETRY_PURGE_SCHEDULE: '0 */10 * * * *',
      SIMULATOR_ENABLED: 'TRUE',
      SIMULATOR_DEVICE_COUNT: '25',
      SIMULATOR_SCHEDULE: '0 */1 * * * *',
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    });
    expect(s.events.consumerGroup).toBe('telemetry-fn');
    expect(s.telemetry.alertThreshold).toBe(12.5);
    expect(s.telemetry.retentionDays).toBe(30);
    expect(s.telemetry.purgeSchedule).toBe('0 */10 * * * *');
    expect(s.simulator.enabled).toBe(true);
    expect(s.simulator.deviceCount).toBe(25);
    expect(s.simulator.schedule).toBe('0 */1 * * * *');
  });

  it('accepts identity-based access to IoT Hub and storage', () => {
    const s = loadSettings({
      IOTHUB_HOST_NAME: 'myhub.azure-devices.net',
      IOTHUB_EVENTS_CONNECTION: valid.IOTHUB_EVENTS_CONNECTION,
      AzureWebJobsStorage__tableServiceUri: 'https://acct.table.core.windows.net',
      AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
    });
    expect(s.iotHub).toEqual({ kind: 'identity', hostName: 'myhub.azure-devices.net' });
    expect(s.storage).toEqual({
      kind: 'identity',
      tableServiceUri: 'https://acct.table.core.windows.net',
      clientId: '00000000-0000-0000-0000-000000000001',
    });
  });

  it('names every missing required setting at once', () => {
    const problems = problemsOf({});
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^IOTHUB_CONNECTION_STRING is missing/);
    expect(problems[1]).toMatch(/^IOTHUB_EVENTS_CONNECTION is missing/);
    expect(problems[2]).toMatch(/^AzureWebJobsStorage is missing/);
  });

  it.each([
    [
      'IOTHUB_CONNECTION_STRING',
      `HostName=myhub.azure-devices.net;SharedAccessKey=${secretKey}`,
      /SharedAccessKeyName/,
    ],
    ['IOTHUB_CONNECTION_STRING', `garbage${secretKey}`, /Key=Value/],
    [
      'IOTHUB_EVENTS_CONNECTION',
      `Endpoint=https://x/;SharedAccessKeyName=a;SharedAccessKey=${secretKey};EntityPath=h`,
      /sb:\/\//,
    ],
    [
      'IOTHUB_EVENTS_CONNECTION',
      `Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=${secretKey}`,
      /EntityPath/,
    ],
    ['AzureWebJobsStorage', `Foo=${secretKey}`, /storage connection string/],
    [
      'TELEMETRY_ALERT_THRESHOLD',
      'fast',
      /^TELEMETRY_ALERT_THRESHOLD must be a number, got "fast"$/,
    ],
    ['SIMULATOR_DEVICE_COUNT', '-1', /whole number from 0 to 10000/],
    ['SIMULATOR_DEVICE_COUNT', '10001', /10000/],
    ['SIMULATOR_ENABLED', 'yes', /true or false, got "yes"$/],
    ['SIMULATOR_SCHEDULE', '*/5 * * * *', /6-field NCRONTAB.*, got "\*\/5 \* \* \* \*"$/],
    ['SIMULATOR_DEVICE_PREFIX', 'bad prefix/', /device id prefix/],
    ['IOTHUB_EVENTS_CONSUMER_GROUP', 'has space', /consumer group/],
    ['FEEDBACK_DRAIN_SECONDS', '0', /1 to 240/],
    ['TELEMETRY_RETENTION_DAYS', '0', /whole number from 1 to 36500/],
    ['TELEMETRY_RETENTION_DAYS', '1.5', /whole number/],
    ['TELEMETRY_PURGE_SCHEDULE', '0 * * * *', /6-field NCRONTAB/],
  ])('rejects a malformed %s with a message naming it', (name, value, expected) => {
    const problems = problemsOf({ ...valid, [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.startsWith(`${name} must be `)).toBe(true);
    expect(problems[0]).toMatch(expected);
  });

  it('never echoes a secret value in its messages', () => {
    const env = {
      IOTHUB_CONNECTION_STRING: `HostName=h;SharedAccessKey=${secretKey}`,
      IOTHUB_EVENTS_CONNECTION: `Endpoint=sb://h/;SharedAccessKey=${secretKey}`,
      AzureWebJobsStorage: `Nope=${secretKey}`,
    };
    try {
      loadSettings(env);
      throw new Error('expected failure');
    } catch (error) {
      expect(error).toBeInstanceOf(SettingsError);
      const message = (error as Error).message;
      expect(message).toContain('IOTHUB_CONNECTION_STRING');
      expect(message).toContain('IOTHUB_EVENTS_CONNECTION');
      expect(message).toContain('AzureWebJobsStorage');
      expect(message).not.toContain(secretKey);
      expect(message).toContain('got a value that is not shown');
    }
  });

  it('accepts an events name equal to the EntityPath and rejects one that differs', () => {
    expect(() => loadSettings({ ...valid, IOTHUB_EVENTS_NAME: 'myhub' })).not.toThrow();
    const problems = problemsOf({ ...valid, IOTHUB_EVENTS_NAME: 'otherhub' });
    expect(problems).toEqual([
      'IOTHUB_EVENTS_NAME does not match the EntityPath of IOTHUB_EVENTS_CONNECTION: expected the same Event Hub-compatible name',
    ]);
  });

  it('knows which settings are secrets', () => {
    expect(isSecretSetting('IOTHUB_CONNECTION_STRING')).toBe(true);
    expect(isSecretSetting('AzureWebJobsStorage')).toBe(true);
    expect(isSecretSetting('SIMULATOR_DEVICE_COUNT')).toBe(false);
  });
});
