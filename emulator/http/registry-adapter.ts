/**
 * The registry REST API over HTTPS, as `azure-iothub`'s `Registry` (1.16.6) calls it: device
 * create/get/list/update/delete, queries over `devices` (evaluated by the core), C2D purge, and
 * twins and direct methods (./twin-routes.ts). TLS is
 * terminated by server.ts, which hands over each connection after sniffing an HTTP method.
 *
 * Every response is JSON (the SDK ignores bodies of any other content type); errors carry IoT
 * Hub's `{"Message":"ErrorCode:<Code>;<text>"}` body (see ./errors.ts). Anything not implemented
 * answers 501 rather than pretending to succeed.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { verifyServiceToken } from '../auth/sas';
import type { PolicyRight } from '../config';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import type { DeviceRecord } from '../core/contracts';
import { isKnownApiVersion } from '../core/api-version';
import { HubError } from '../core/contracts';
import { parseDeviceBody, toCreateInput, toDeviceJson, toUpdateInput } from './device-json';
import { toErrorResponse } from './errors';
import { header, ifMatchOf, type Request, type Response, type Route } from './route';
import { twinRoutes } from './twin-routes';
import { readBody } from './body';
import { createDeviceRoutes } from './device-routes';

const maxBodyBytes = 1024 * 1024;
const defaultPageSize = 100;
const maxPageSize = 10_000;
const maxListSize = 1000;

/** A request before authentication: the body is still raw bytes, unparsed. */
type RawRequest = Omit<Request, 'body'> & { raw: Buffer };

/** Parsed only once the caller is authenticated: a bad token must not learn about JSON errors. */
function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HubError('ArgumentInvalid', 'the request body is not valid JSON');
  }
}

type Handler = (request: RawRequest) => Promise<Response> | Response;

function pageSizeOf(headers: http.IncomingHttpHeaders): number {
  const value = header(headers, 'x-ms-max-item-count');
  if (value === undefined || value === '') return defaultPageSize;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > maxPageSize) {
    throw new HubError('ArgumentInvalid', `x-ms-max-item-count must be 1-${maxPageSize}`);
  }
  return n;
}

export interface RegistryAdapterOptions {
  /** Serves HTTP upgrade requests (WebSockets, ../websocket.ts); without it they are plain requests. */
  upgrade?: (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export function createRegistryAdapter(
  ctx: EmulatorContext,
  options: RegistryAdapterOptions = {},
): ProtocolAdapter {
  const { core, log } = ctx;
  const registry = core.registry;
  const deviceRoutes = createDeviceRoutes(ctx);

  const requireDevice = (deviceId: string): DeviceRecord => {
    const device = registry.get(deviceId);
    if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    return device;
  };
  const deviceResponse = (device: DeviceRecord): Response => ({
    status: 200,
    body: toDeviceJson(device, registry.activity(device.deviceId)),
    headers: { etag: `"${device.etag}"` },
  });

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: ['devices'],
      right: 'RegistryRead',
      handler: ({ query }) => {
        const top = query.get('top');
        const limit = top === null ? maxListSize : Number(top);
        if (!Number.isInteger(limit) || limit < 1 || limit > maxListSize) {
          throw new HubError('ArgumentInvalid', `top must be 1-${maxListSize}`);
        }
        const devices = registry.list().slice(0, limit);
        return {
          status: 200,
          body: devices.map((d) => toDeviceJson(d, registry.activity(d.deviceId))),
        };
      },
    },
    {
      method: 'POST',
      pattern: ['devices', 'query'],
      right: 'RegistryRead',
      handler: ({ body, headers }) => {
        const text =
          typeof body === 'object' && body !== null
            ? (body as { query?: unknown }).query
            : undefined;
        const page = core.twins.query(
          text,
          pageSizeOf(headers),
          header(headers, 'x-ms-continuation') || undefined,
        );
        const responseHeaders: Record<string, string> = { 'x-ms-item-type': page.itemType };
        if (page.continuation !== undefined) {
          responseHeaders['x-ms-continuation'] = page.continuation;
        }
        return { status: 200, body: page.items, headers: responseHeaders };
      },
    },
    {
      method: 'GET',
      pattern: ['devices', ':id'],
      right: 'RegistryRead',
      handler: (_request, deviceId) => deviceResponse(requireDevice(deviceId)),
    },
    {
      method: 'PUT',
      pattern: ['devices', ':id'],
      right: 'RegistryWrite',
      handler: async ({ body, headers }, deviceId) => {
        const parsed = parseDeviceBody(body);
        if (parsed.deviceId !== undefined && parsed.deviceId !== deviceId) {
          throw new HubError('ArgumentInvalid', 'the deviceId in the body does not match the URL');
        }
        const ifMatch = ifMatchOf(headers);
        const device =
          ifMatch === undefined
            ? await registry.create(toCreateInput(deviceId, parsed))
            : await registry.update(deviceId, toUpdateInput(parsed), ifMatch);
        return deviceResponse(device);
      },
    },
    {
      method: 'DELETE',
      pattern: ['devices', ':id'],
      right: 'RegistryWrite',
      handler: async ({ headers }, deviceId) => {
        await registry.delete(deviceId, ifMatchOf(headers));
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      pattern: ['devices', ':id', 'commands'],
      right: 'ServiceConnect',
      handler: async (_request, deviceId) => {
        requireDevice(deviceId);
        const purged = await core.c2d.purge(deviceId);
        return { status: 200, body: { totalMessagesPurged: purged, deviceId, moduleId: null } };
      },
    },
    ...twinRoutes(core),
  ];

  const matchRoute = (request: RawRequest): { route: Route; deviceId: string } | undefined => {
    for (const route of routes) {
      if (route.method !== request.method || route.pattern.length !== request.segments.length) {
        continue;
      }
      let deviceId = '';
      const matches = route.pattern.every((part, i) => {
        const segment = request.segments[i] ?? '';
        if (part === ':id') {
          deviceId = segment;
          return segment !== '';
        }
        return part === segment.toLowerCase();
      });
      if (matches) return { route, deviceId };
    }
    return undefined;
  };

  const authenticate = (request: RawRequest, right: PolicyRight | undefined): void => {
    const token = header(request.headers, 'authorization');
    if (!token) throw new HubError('Unauthorized', 'the request has no Authorization header');
    const now = core.clock.now();
    if (right !== undefined) {
      verifyServiceToken(token, ctx.identity, right, now);
      return;
    }
    // Unknown operation: any valid policy token may learn that it is not implemented.
    const rights: PolicyRight[] = ['RegistryRead', 'RegistryWrite', 'ServiceConnect'];
    let lastError: unknown;
    for (const r of rights) {
      try {
        verifyServiceToken(token, ctx.identity, r, now);
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };

  const handle: Handler = async (request) => {
    // Every IoT Hub REST request names a protocol version it knows, checked before anything else.
    const apiVersion = request.query.get('api-version');
    if (!isKnownApiVersion(apiVersion)) {
      throw new HubError(
        'InvalidProtocolVersion',
        apiVersion === null
          ? 'the api-version query parameter is required'
          : `api-version ${JSON.stringify(apiVersion.slice(0, 40))} is not supported`,
      );
    }
    const matched = matchRoute(request);
    authenticate(request, matched?.route.right);
    if (!matched) {
      throw new HubError(
        'NotImplemented',
        `${request.method} /${request.segments.join('/')} is not implemented by the local IoT Hub`,
      );
    }
    const { raw, ...rest } = request;
    return matched.route.handler({ ...rest, body: parseJsonBody(raw) }, matched.deviceId);
  };

  const send = (res: http.ServerResponse, response: Response): void => {
    const payload = response.body === undefined ? '' : JSON.stringify(response.body);
    res.writeHead(response.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      ...response.headers,
    });
    res.end(payload);
  };

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'https://local-iothub');
    let label = `${method} ${url.pathname}`;
    try {
      let segments: string[];
      try {
        segments = url.pathname
          .split('/')
          .filter((s) => s !== '')
          .map((s) => decodeURIComponent(s));
      } catch {
        throw new HubError('ArgumentInvalid', 'the request path is not valid percent-encoding');
      }
      label = `${method} /${segments.join('/')}`;
      // Device-facing paths authenticate a device before they read any body.
      const deviceRequest = deviceRoutes.match(method, segments, url.searchParams);
      if (deviceRequest) {
        await deviceRoutes.serve(req, res, deviceRequest);
        return;
      }
      const raw = await readBody(req, maxBodyBytes);
      send(
        res,
        await handle({ method, segments, query: url.searchParams, headers: req.headers, raw }),
      );
    } catch (error) {
      const response = toErrorResponse(error);
      if (error instanceof HubError) {
        log.warn(`${label} rejected: ${response.status} ${response.code}: ${error.message}`);
      } else {
        log.error(
          `${label} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      }
      if (!res.headersSent && !res.destroyed)
        send(res, { status: response.status, body: response.body });
    }
  };

  const server = http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    void onRequest(req, res);
  });
  // Idle connections are dropped (the server is never `listen`ed, so only socket timeouts apply).
  // A direct method call may legitimately wait 300 s to connect plus 300 s for the answer.
  server.timeout = 660_000;
  if (options.upgrade) server.on('upgrade', options.upgrade);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    log.warn(`refused a malformed HTTP request: ${error.code ?? error.message}`);
    if ((socket as Partial<{ writable: boolean }>).writable) {
      const payload = JSON.stringify(
        toErrorResponse(new HubError('ArgumentInvalid', 'malformed HTTP request')).body,
      );
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(payload)}\r\nconnection: close\r\n\r\n${payload}`,
      );
    } else {
      socket.destroy();
    }
  });

  const sockets = new Set<Duplex>();
  return {
    handle(socket) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      server.emit('connection', socket);
    },
    close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      return Promise.resolve();
    },
  };
}
