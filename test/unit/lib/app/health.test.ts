import { HttpRequest, InvocationContext } from '@azure/functions';
import { errors } from 'azure-iot-common';
import { checkHealth, createHealthHandler, type HealthProbes } from '../../../../lib/app/health';
import { createApiServices } from '../../../../lib/app/services';
import type { HubDevice, RegistryClient, ServiceClient } from '../../../../lib/iothub/clients';
import { MemoryEntityStore } from '../../../../lib/storage/memory-entity-store';

const up = () => Promise.resolve();
const log = () => undefined;

describe('checkHealth', () => {
  it('is healthy when every probe answers', async () => {
    const report = await checkHealth({ iotHubRegistry: up, iotHubService: up, storage: up }, log);
    expect(report).toEqual({
      status: 'healthy',
      services: {
        iotHubRegistry: { status: 'up' },
        iotHubService: { status: 'up' },
        storage: { status: 'up' },
      },
    });
  });

  it('names the service that is down, without error internals', async () => {
    const key = 'c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw';
    const lines: string[] = [];
    const probes: HealthProbes = {
      iotHubRegistry: up,
      iotHubService: () =>
        Promise.reject(
          Object.assign(new Error(`connect ECONNREFUSED SharedAccessKey=${key}`), {
            code: 'ECONNREFUSED',
          }),
        ),
      storage: up,
    };
    const report = await checkHealth(probes, (line) => lines.push(line));
    expect(report.status).toBe('unhealthy');
    expect(report.services.iotHubService).toEqual({
      status: 'down',
      detail: 'IoT Hub is unreachable or unavailable',
    });
    expect(report.services.storage.status).toBe('up');
    expect(JSON.stringify(report)).not.toContain(key);
    expect(lines.join('\n')).not.toContain(key);
  });

  it('gives up on a probe that hangs', async () => {
    jest.useFakeTimers();
    try {
      const pending = checkHealth(
        { iotHubRegistry: up, iotHubService: up, storage: () => new Promise(() => undefined) },
        log,
        2000,
      );
      await jest.advanceTimersByTimeAsync(2000);
      const report = await pending;
      expect(report.services.storage).toEqual({
        status: 'down',
        detail: 'no answer within 2000 ms',
      });
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('GET /health', () => {
  function services(registryError: Error, tableError?: Error) {
    const registry = {
      get: (): Promise<HubDevice> => Promise.reject(registryError),
    } as unknown as RegistryClient;
    const client: ServiceClient = {
      open: up,
      close: up,
      send: up,
      getFeedbackReceiver: () => Promise.reject(new Error('unused')),
      onDisconnect: () => undefined,
    };
    const tables = new MemoryEntityStore();
    if (tableError) tables.failure = () => tableError;
    return createApiServices({
      registry,
      serviceClient: () => client,
      statusStore: tables,
      hubHostName: 'hub',
    });
  }

  const call = (s: ReturnType<typeof services>) =>
    createHealthHandler(() => s)(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }),
      new InvocationContext({ logHandler: () => undefined }),
    );

  it('answers 200 when the registry answers (an unknown probe device counts as an answer)', async () => {
    const response = await call(services(new errors.DeviceNotFoundError('no')));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body as string)).toMatchObject({ status: 'healthy' });
  });

  it('answers 503 naming storage when the table is unreachable', async () => {
    const response = await call(
      services(
        new errors.DeviceNotFoundError('no'),
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      ),
    );
    expect(response.status).toBe(503);
    const body = JSON.parse(response.body as string) as { services: Record<string, unknown> };
    expect(body.services.storage).toEqual({
      status: 'down',
      detail: 'Storage is unreachable or unavailable',
    });
    expect(body.services.iotHubRegistry).toEqual({ status: 'up' });
  });

  it('answers 503 naming the registry when the hub refuses the credentials', async () => {
    const response = await call(services(new errors.UnauthorizedError('bad key')));
    expect(response.status).toBe(503);
    const body = JSON.parse(response.body as string) as { services: Record<string, unknown> };
    expect(body.services.iotHubRegistry).toMatchObject({ status: 'down' });
  });
});
