/**
 * The function files as the Functions host sees them: what they register (routes, methods,
 * auth levels, the timer schedule), and their exported handlers working without a host.
 * `@azure/functions-core` is the module the real worker provides; here it records registrations.
 */
import { HttpRequest } from '@azure/functions';
import { contextLoggingTo } from '../../support/http';

interface Registered {
  name: string;
  bindings: Record<string, Record<string, unknown>>;
}

const registered: Registered[] = [];

jest.mock(
  '@azure/functions-core',
  () => ({
    version: '4.0.0',
    hostVersion: '4.0.0',
    setProgrammingModel: () => undefined,
    getProgrammingModel: () => undefined,
    registerHook: () => ({ dispose: () => undefined }),
    log: () => undefined,
    registerFunction: (metadata: Registered) => {
      registered.push(metadata);
      return { dispose: () => undefined };
    },
    Disposable: class {
      dispose(): void {}
    },
  }),
  { virtual: true },
);

function trigger(name: string): Record<string, unknown> {
  const fn = registered.find((r) => r.name === name);
  if (!fn) throw new Error(`${name} was not registered`);
  const binding = Object.values(fn.bindings).find((b) => /Trigger$/.test(String(b.type)));
  if (!binding) throw new Error(`${name} has no trigger`);
  return binding;
}

const savedEnv = { ...process.env };

beforeAll(async () => {
  // No settings at all: loading the files must not need them.
  for (const name of [
    'IOTHUB_CONNECTION_STRING',
    'IOTHUB_EVENTS_CONNECTION',
    'AzureWebJobsStorage',
  ]) {
    delete process.env[name];
  }
  await import('../../../functions/devices');
  await import('../../../functions/messages');
  await import('../../../functions/health');
  await import('../../../functions/openapi');
  await import('../../../functions/feedback');
  await import('../../../functions/retention');
  await import('../../../functions/history');
  await import('../../../functions/explorer');
});

afterAll(() => {
  process.env = savedEnv;
});

describe('registrations', () => {
  it.each([
    ['createDevice', 'devices', 'POST', 'function'],
    ['listDevices', 'devices', 'GET', 'function'],
    ['getDevice', 'devices/{deviceId}', 'GET', 'function'],
    ['updateDevice', 'devices/{deviceId}', 'PATCH', 'function'],
    ['deleteDevice', 'devices/{deviceId}', 'DELETE', 'function'],
    ['sendMessage', 'devices/{deviceId}/messages', 'POST', 'function'],
    ['getMessageStatus', 'devices/{deviceId}/messages/{messageId}', 'GET', 'function'],
    ['getAlerts', 'devices/{deviceId}/alerts', 'GET', 'function'],
    ['getDeadLetters', 'devices/{deviceId}/deadletters', 'GET', 'function'],
    ['health', 'health', 'GET', 'anonymous'],
    ['openapi', 'openapi.json', 'GET', 'anonymous'],
  ])('%s: %s %s, auth %s', (name, route, method, authLevel) => {
    expect(trigger(name)).toMatchObject({
      type: 'httpTrigger',
      route,
      methods: [method],
      authLevel,
    });
  });

  it('serves the device explorer anonymously (the page holds no secret; its data calls are keyed)', () => {
    expect(trigger('explorer')).toMatchObject({
      type: 'httpTrigger',
      route: 'explorer/{*path}',
      methods: ['GET', 'HEAD'],
      authLevel: 'anonymous',
    });
  });

  it('runs the feedback timer on the FEEDBACK_SCHEDULE setting', () => {
    expect(trigger('feedback')).toMatchObject({
      type: 'timerTrigger',
      schedule: '%FEEDBACK_SCHEDULE%',
    });
  });

  it('runs the telemetry retention purge on the TELEMETRY_PURGE_SCHEDULE setting', () => {
    expect(trigger('telemetryRetention')).toMatchObject({
      type: 'timerTrigger',
      schedule: '%TELEMETRY_PURGE_SCHEDULE%',
    });
  });
});

describe('exported handlers without settings', () => {
  it('answer a 500 problem that names no setting value', async () => {
    const { deviceHandlers } = await import('../../../functions/devices');
    const logs: string[] = [];
    const response = await deviceHandlers.list(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/devices' }),
      contextLoggingTo(logs),
    );
    expect(response.status).toBe(500);
    expect(JSON.parse(response.body as string)).toMatchObject({
      type: 'https://iot-hub-functions.dev/problems/internal',
    });
    expect(logs.join('\n')).toContain('IOTHUB_CONNECTION_STRING is missing');
  });

  it('answer the alerts route with a 500 problem that names no setting value', async () => {
    const { historyHandlers } = await import('../../../functions/history');
    const logs: string[] = [];
    const response = await historyHandlers.alerts(
      new HttpRequest({
        method: 'GET',
        url: 'http://localhost/api/devices/sim-1/alerts',
        params: { deviceId: 'sim-1' },
      }),
      contextLoggingTo(logs),
    );
    expect(response.status).toBe(500);
    expect(logs.join('\n')).toContain('IOTHUB_CONNECTION_STRING is missing');
  });

  it('fail the retention run with a log line that names the missing setting', async () => {
    const { retentionTimer } = await import('../../../functions/retention');
    const logs: string[] = [];
    await expect(retentionTimer({} as never, contextLoggingTo(logs))).rejects.toThrow();
    expect(logs.join('\n')).toContain('IOTHUB_CONNECTION_STRING is missing');
  });

  it('serve the OpenAPI document anonymously', async () => {
    const { openApiHandler } = await import('../../../functions/openapi');
    const response = await openApiHandler();
    expect(response.status).toBe(200);
    const document = JSON.parse(response.body as string) as { openapi: string };
    expect(document.openapi).toBe('3.1.0');
  });
});
