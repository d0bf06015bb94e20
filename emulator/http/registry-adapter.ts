/**
 * The registry REST API over HTTPS, as `azure-iothub`'s `Registry` (1.16.6) calls it, served from
 * a table of routes: devices, queries and C2D purge (./registry-routes.ts), twins and direct
 * methods (./twin-routes.ts), plus any routes the caller adds. Device-facing paths go to
 * ./device-routes.ts. TLS is terminated by server.ts, which hands over each connection after
 * sniffing an HTTP method.
 *
 * What every service route shares is done here once, in this order: the 1 MiB body limit (the
 * body is read, not parsed), the api-version, the policy token, JSON parsing, and the reply. Every
 * response is JSON (the SDK ignores bodies of any other content type); errors carry IoT Hub's
 * `{"Message":"ErrorCode:<Code>;<text>"}` body (see ./errors.ts). Anything not implemented
 * answers 501 rather than pretending to succeed.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { verifyServiceToken } from '../auth/sas';
import type { PolicyRight } from '../config';
import type { EmulatorContext, Logger, ProtocolAdapter } from '../context';
import { isKnownApiVersion } from '../core/api-version';
import { HubError } from '../core/contracts';
import { readBody } from './body';
import { createDeviceRoutes, type DeviceRoutes } from './device-routes';
import { toErrorResponse } from './errors';
import { deviceRegistryRoutes } from './registry-routes';
import { sendFailure, sendJson } from './reply';
import { findRoute, header, type Request, type Response, type Route } from './route';
import { twinRoutes } from './twin-routes';

const maxBodyBytes = 1024 * 1024;

/** Every service route the registry surface serves, in match order. */
export const serviceRoutes: readonly Route[] = [...deviceRegistryRoutes, ...twinRoutes];

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

/** Every IoT Hub REST request names a protocol version it knows, checked before anything else. */
function checkApiVersion(query: URLSearchParams): void {
  const apiVersion = query.get('api-version');
  if (isKnownApiVersion(apiVersion)) return;
  throw new HubError(
    'InvalidProtocolVersion',
    apiVersion === null
      ? 'the api-version query parameter is required'
      : `api-version ${JSON.stringify(apiVersion.slice(0, 40))} is not supported`,
  );
}

/** A policy token granting `right`; for an unknown operation (`right` undefined) any policy right. */
function authenticateService(
  ctx: EmulatorContext,
  headers: http.IncomingHttpHeaders,
  right: PolicyRight | undefined,
): void {
  const token = header(headers, 'authorization');
  if (!token) throw new HubError('Unauthorized', 'the request has no Authorization header');
  const now = ctx.core.clock.now();
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
}

/** Order: api-version, then the caller's token, then the route; the body is parsed last. */
async function serveService(
  ctx: EmulatorContext,
  routes: readonly Route[],
  request: RawRequest,
): Promise<Response> {
  checkApiVersion(request.query);
  const matched = findRoute(routes, request.method, request.segments);
  authenticateService(ctx, request.headers, matched?.route.right);
  if (!matched) {
    throw new HubError(
      'NotImplemented',
      `${request.method} /${request.segments.join('/')} is not implemented by the local IoT Hub`,
    );
  }
  const { raw, ...rest } = request;
  return matched.route.handler({
    core: ctx.core,
    request: { ...rest, body: parseJsonBody(raw) },
    deviceId: matched.params.get('id') ?? '',
  });
}

function decodeSegments(pathname: string): string[] {
  try {
    return pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    throw new HubError('ArgumentInvalid', 'the request path is not valid percent-encoding');
  }
}

/** One HTTP request on the hub's HTTPS port: a device-facing path, or a service route. */
async function onRequest(
  surface: { ctx: EmulatorContext; routes: readonly Route[]; devices: DeviceRoutes },
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const url = new URL(req.url ?? '/', 'https://local-iothub');
  let label = `${method} ${url.pathname}`;
  try {
    const segments = decodeSegments(url.pathname);
    label = `${method} /${segments.join('/')}`;
    // Device-facing paths authenticate a device before they read any body.
    const deviceRequest = surface.devices.match(method, segments, url.searchParams);
    if (deviceRequest) {
      await surface.devices.serve(req, res, deviceRequest);
      return;
    }
    const raw = await readBody(req, maxBodyBytes);
    const request = { method, segments, query: url.searchParams, headers: req.headers, raw };
    sendJson(res, await serveService(surface.ctx, surface.routes, request));
  } catch (error) {
    sendFailure(res, surface.ctx.log, label, error);
  }
}

/** A request Node's parser refused: IoT Hub's error body if the socket still takes it. */
function refuseMalformed(log: Logger, error: NodeJS.ErrnoException, socket: Duplex): void {
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
}

export interface RegistryAdapterOptions {
  /** Serves HTTP upgrade requests (WebSockets, ../websocket.ts); without it they are plain requests. */
  upgrade?: (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Routes served after `serviceRoutes` (each one `route(method, path, right, handler)`). */
  routes?: readonly Route[];
}

export function createRegistryAdapter(
  ctx: EmulatorContext,
  options: RegistryAdapterOptions = {},
): ProtocolAdapter {
  const surface = {
    ctx,
    routes: [...serviceRoutes, ...(options.routes ?? [])],
    devices: createDeviceRoutes(ctx),
  };
  const server = http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    void onRequest(surface, req, res);
  });
  // Idle connections are dropped (the server is never `listen`ed, so only socket timeouts apply).
  // A direct method call may legitimately wait 300 s to connect plus 300 s for the answer.
  server.timeout = 660_000;
  if (options.upgrade) server.on('upgrade', options.upgrade);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
    refuseMalformed(ctx.log, error, socket),
  );

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
