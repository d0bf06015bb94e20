/**
 * The registry REST API over HTTPS, as `azure-iothub`'s `Registry` (1.16.6) calls it: device
 * create/get/list/update/delete, queries over `devices`, twin get and C2D purge. TLS is
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
import {
  parseDeviceBody,
  toCreateInput,
  toDeviceJson,
  toTwinJson,
  toUpdateInput,
} from './device-json';
import { toErrorResponse } from './errors';
import { parseDeviceQuery } from './query';

const maxBodyBytes = 1024 * 1024;
/** How much of an oversized body is read and dropped before the connection is cut. */
const maxDiscardBytes = 16 * 1024 * 1024;
const defaultPageSize = 100;
const maxPageSize = 10_000;
const maxListSize = 1000;

interface Request {
  method: string;
  /** Decoded path segments, e.g. ['devices', 'my device']. */
  segments: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

interface Response {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = (request: Request) => Promise<Response> | Response;

interface Route {
  method: string;
  /** Literal segments, or ':id' for the device id. */
  pattern: string[];
  right: PolicyRight;
  handler: (request: Request, deviceId: string) => Promise<Response> | Response;
}

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `"*"` or `"<etag>"` as sent; the quotes are not part of the etag. */
function ifMatchOf(headers: http.IncomingHttpHeaders): string | undefined {
  const value = header(headers, 'if-match');
  if (value === undefined) return undefined;
  return value
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

function encodeContinuation(afterDeviceId: string): string {
  return Buffer.from(JSON.stringify({ after: afterDeviceId }), 'utf8').toString('base64url');
}

function decodeContinuation(token: string): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && 'after' in value) {
      const after = value.after;
      if (typeof after === 'string') return after;
    }
  } catch {
    // fall through
  }
  throw new HubError('ArgumentInvalid', 'the x-ms-continuation token is not valid');
}

function pageSizeOf(headers: http.IncomingHttpHeaders): number {
  const value = header(headers, 'x-ms-max-item-count');
  if (value === undefined || value === '') return defaultPageSize;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > maxPageSize) {
    throw new HubError('ArgumentInvalid', `x-ms-max-item-count must be 1-${maxPageSize}`);
  }
  return n;
}

export function createRegistryAdapter(ctx: EmulatorContext): ProtocolAdapter {
  const { core, log } = ctx;
  const registry = core.registry;

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
        const query = parseDeviceQuery(text);
        const pageSize = pageSizeOf(headers);
        const continuation = header(headers, 'x-ms-continuation');
        const after = continuation ? decodeContinuation(continuation) : undefined;
        const matching = registry
          .list()
          .filter((device) =>
            query.conditions.every(({ field, value }) => {
              if (field === 'deviceId') return device.deviceId === value;
              if (field === 'status') return device.status === value;
              return registry.activity(device.deviceId).connectionState === value;
            }),
          )
          .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
          .filter((device) => after === undefined || device.deviceId > after);
        const page = matching.slice(0, pageSize);
        const responseHeaders: Record<string, string> = { 'x-ms-item-type': 'Twin' };
        const last = page[page.length - 1];
        // Only when more pages exist: an empty continuation header makes the SDK loop forever.
        if (matching.length > page.length && last) {
          responseHeaders['x-ms-continuation'] = encodeContinuation(last.deviceId);
        }
        return {
          status: 200,
          body: page.map((d) => toTwinJson(d, registry.activity(d.deviceId))),
          headers: responseHeaders,
        };
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
    {
      method: 'GET',
      pattern: ['twins', ':id'],
      right: 'RegistryRead',
      handler: (_request, deviceId) => {
        const device = requireDevice(deviceId);
        return { status: 200, body: toTwinJson(device, registry.activity(deviceId)) };
      },
    },
  ];

  const matchRoute = (request: Request): { route: Route; deviceId: string } | undefined => {
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

  const authenticate = (request: Request, right: PolicyRight | undefined): void => {
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
    return matched.route.handler(request, matched.deviceId);
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

  /**
   * Collects the body up to the limit. Beyond it the request fails with MessageTooLarge, but the
   * rest is still read and dropped (up to `maxDiscardBytes`), so the client that is still sending
   * gets to read the 413 instead of a connection reset.
   */
  const tooLarge = () =>
    new HubError('MessageTooLarge', `the request body exceeds ${maxBodyBytes} bytes`);
  const discardRest = (req: http.IncomingMessage): void => {
    let discarded = 0;
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > maxDiscardBytes) req.socket.destroy();
    });
    req.resume();
  };
  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          discardRest(req);
          reject(tooLarge());
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'https://local-iothub');
    let label = `${method} ${url.pathname}`;
    try {
      const declared = Number(header(req.headers, 'content-length') ?? '0');
      if (declared > maxBodyBytes) {
        discardRest(req);
        throw tooLarge();
      }
      const raw = await readBody(req);
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
      let body: unknown;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new HubError('ArgumentInvalid', 'the request body is not valid JSON');
        }
      }
      send(
        res,
        await handle({ method, segments, query: url.searchParams, headers: req.headers, body }),
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
  server.timeout = 120_000;
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
