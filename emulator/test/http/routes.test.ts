/**
 * The registry surface's route table: how a path finds its entry, that no entry hides another,
 * and that an added entry (one `route(...)` line) gets the shared checks (api-version, policy
 * token, error replies) without writing them again. The adapter runs in-process over plain TCP.
 */
import http from 'node:http';
import net from 'node:net';
import { SharedAccessSignature } from 'azure-iot-common';
import { wellKnownHubIdentity } from '../../config';
import type { EmulatorContext, ProtocolAdapter } from '../../context';
import { FakeClock } from '../../core/clock';
import type { InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';
import { createRegistryAdapter, serviceRoutes } from '../../http/registry-adapter';
import { findRoute, route } from '../../http/route';

describe('route table matching', () => {
  const table = [
    route('GET', 'devices', 'RegistryRead', () => ({ status: 200, body: 'list' })),
    route('GET', 'devices/:id', 'RegistryRead', () => ({ status: 200, body: 'one' })),
    route('DELETE', 'devices/:id/commands', 'ServiceConnect', () => ({ status: 200 })),
  ];

  test('literals match case-insensitively, parameters take the segment as sent', () => {
    const found = findRoute(table, 'DELETE', ['Devices', 'My Device', 'COMMANDS']);
    expect(found?.route).toBe(table[2]);
    expect(found?.params.get('id')).toBe('My Device');
  });

  test('method and segment count must both fit; a parameter never matches an empty segment', () => {
    expect(findRoute(table, 'POST', ['devices'])).toBeUndefined();
    expect(findRoute(table, 'GET', ['devices', 'a', 'b'])).toBeUndefined();
    expect(findRoute(table, 'GET', ['devices', ''])).toBeUndefined();
    expect(findRoute(table, 'GET', ['devices'])?.route).toBe(table[0]);
  });

  test('every service route is reachable: no earlier entry hides it', () => {
    for (const entry of serviceRoutes) {
      const segments = entry.pattern.map((part) => (part.startsWith(':') ? 'some-id' : part));
      expect(findRoute(serviceRoutes, entry.method, segments)?.route).toBe(entry);
    }
  });
});

describe('an added route on the registry surface', () => {
  let core: InspectableCore;
  let adapter: ProtocolAdapter;
  let server: net.Server;
  let port: number;
  const clock = new FakeClock();
  const policy = wellKnownHubIdentity.policies[0]!;
  const token = SharedAccessSignature.create(
    'local-iothub',
    policy.name,
    policy.primaryKey,
    Math.floor(clock.now() / 1000) + 3600,
  ).toString();

  beforeAll(async () => {
    core = await createCore({ clock });
    const ctx: EmulatorContext = {
      core,
      identity: wellKnownHubIdentity,
      hostName: 'localhost',
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    };
    const extra = route('GET', 'local/ping/:id', 'RegistryRead', ({ deviceId, request }) => ({
      status: 200,
      body: { deviceId, n: request.query.get('n') },
    }));
    adapter = createRegistryAdapter(ctx, { routes: [extra] });
    server = net.createServer((socket) => adapter.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await adapter.close();
    await new Promise((resolve) => server.close(resolve));
    await core.close();
  });

  const get = (path: string, headers: http.OutgoingHttpHeaders = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });

  test('is served with its path parameter and query', async () => {
    const answer = await get('/local/ping/d%201?api-version=2021-04-12&n=7', {
      authorization: token,
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ deviceId: 'd 1', n: '7' });
  });

  test('gets the shared api-version and token checks and IoT Hub error bodies', async () => {
    const noVersion = await get('/local/ping/d', { authorization: token });
    expect(noVersion.status).toBe(400);
    expect(noVersion.body).toContain('ErrorCode:InvalidProtocolVersion');
    const noToken = await get('/local/ping/d?api-version=2021-04-12');
    expect(noToken.status).toBe(401);
    expect(noToken.body).toContain('ErrorCode:IotHubUnauthorizedAccess');
  });
});
