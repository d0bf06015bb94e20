/**
 * The HTTP front end: `node:http` on the host's port, routes under the route prefix, keys, and the
 * RPC conversion. Every error the host itself answers is problem+json (`problem.ts`); a handler
 * that fails yields a 500 whose detail names the function (the error goes to the console, never
 * to the client). Bodies are limited while they stream in (`body.ts`), and connections that send
 * nothing, or stall, are closed by the header, request and keep-alive timeouts.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { RegisteredFunction } from '../core-api';
import type { InvocationInput, InvocationResult } from '../invoke';
import type { HostLog } from '../log';
import type { RpcInvocationResponse, RpcTypedData } from '../rpc-types';
import { declaredLength, readLimitedBody } from './body';
import { fromRpcHttpResponse, requestUrl, toRpcHttpRequest, writeResponse } from './convert';
import type { AuthLevel, HostKeys } from './keys';
import { authFailure, parseAuthLevel, presentedKey } from './keys';
import { answerClientError, sendProblem } from './problem';
import type { CompiledRoute } from './routes';
import { compareRoutes, compileRoute } from './routes';

export interface HttpFunction {
  name: string;
  triggerName: string;
  route: CompiledRoute;
  methods: ReadonlySet<string>;
  authLevel: AuthLevel;
  fn: RegisteredFunction;
}

export function isHttpTriggerType(type: unknown): boolean {
  return typeof type === 'string' && type.toLowerCase() === 'httptrigger';
}

export function toHttpFunction(
  fn: RegisteredFunction,
  resolve: (value: string, where: string) => string,
): HttpFunction {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) => isHttpTriggerType(b.type));
  if (!entry) throw new Error(`function "${fn.metadata.name}" has no HTTP trigger`);
  const [triggerName, binding] = entry;
  const name = fn.metadata.name;
  const routeText =
    typeof binding.route === 'string' && binding.route.length > 0 ? binding.route : name;
  const methodList = Array.isArray(binding.methods) ? (binding.methods as unknown[]) : [];
  return {
    name,
    triggerName,
    route: compileRoute(resolve(routeText, `function "${name}" route`)),
    methods: new Set(methodList.map((m) => String(m).toUpperCase())),
    authLevel: parseAuthLevel(binding.authLevel, name),
    fn,
  };
}

export function sortHttpFunctions(functions: HttpFunction[]): HttpFunction[] {
  return [...functions].sort((a, b) => compareRoutes(a.route, b.route));
}

export type RouteLookup =
  | { kind: 'found'; fn: HttpFunction; params: Record<string, string> }
  | { kind: 'notFound' }
  | { kind: 'methodNotAllowed'; allow: string[] };

/** Finds the function for a path below the route prefix; an empty method set means any method. */
export function lookupRoute(
  functions: readonly HttpFunction[],
  method: string,
  path: string,
): RouteLookup {
  const allow = new Set<string>();
  let pathMatched = false;
  for (const fn of functions) {
    const params = fn.route.match(path);
    if (!params) continue;
    pathMatched = true;
    if (fn.methods.size === 0 || fn.methods.has(method.toUpperCase()))
      return { kind: 'found', fn, params };
    fn.methods.forEach((m) => allow.add(m));
  }
  return pathMatched
    ? { kind: 'methodNotAllowed', allow: [...allow].sort() }
    : { kind: 'notFound' };
}

/** Finds the HTTP output of a response: `$return` or a named `http` output binding. */
export function findHttpOutput(
  fn: RegisteredFunction,
  response: RpcInvocationResponse,
): RpcTypedData | null | undefined {
  for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
    if (binding.direction !== 'out' || String(binding.type).toLowerCase() !== 'http') continue;
    if (name === '$return') return response.returnValue;
    return response.outputData?.find((o) => o.name === name)?.data;
  }
  return response.returnValue;
}

/** How long a connection may take or idle; every value in milliseconds. */
export interface HttpTimeouts {
  /** From connecting to the end of the request headers; also closes sockets that send nothing. */
  headersMs: number;
  /** From connecting to the end of the request body. */
  requestMs: number;
  /** Idle time between requests on a kept-alive connection. */
  keepAliveMs: number;
}

/** Kestrel's RequestHeadersTimeout (30 s), Node's request timeout (5 min) and keep-alive (5 s). */
export const defaultHttpTimeouts: HttpTimeouts = {
  headersMs: 30_000,
  requestMs: 300_000,
  keepAliveMs: 5_000,
};

export interface HttpServerOptions {
  functions: readonly HttpFunction[];
  routePrefix: string;
  keys: HostKeys;
  log: HostLog;
  invoke(fn: RegisteredFunction, input: InvocationInput): Promise<InvocationResult>;
  /** `POST /admin/functions/{name}`: runs a non-HTTP function now (master key), as Core Tools does. */
  triggerNonHttp(name: string, input: string): Promise<boolean>;
  /** Whether the host still accepts invocations (false while stopping). */
  accepting(): boolean;
  /** The request body limit in bytes (`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`). */
  maxRequestBodyBytes: number;
  timeouts?: Partial<HttpTimeouts>;
}

function plain(res: ServerResponse, status: number, text: string): void {
  const body = Buffer.from(text);
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
  });
  res.end(body);
}

/** 413, then the connection is closed so the rest of the body is never read. */
function tooLarge(res: ServerResponse, limit: number): void {
  sendProblem(res, 'payloadTooLarge', `Request bodies are limited to ${limit} bytes.`, {
    connection: 'close',
  });
}

/** The part of a path below the route prefix, or undefined when it is outside the prefix. */
function belowPrefix(pathname: string, prefix: string): string | undefined {
  if (!prefix) return pathname;
  const lower = pathname.toLowerCase();
  if (lower !== prefix && !lower.startsWith(`${prefix}/`)) return undefined;
  return pathname.slice(prefix.length);
}

/** A path segment decoded, or undefined when its percent-encoding is malformed. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** What the request handlers share: the options and the route prefix as a path (`/api`). */
interface Served extends HttpServerOptions {
  prefix: string;
}

async function runNonHttp(
  served: Served,
  req: IncomingMessage,
  res: ServerResponse,
  rawName: string,
): Promise<void> {
  const limit = served.maxRequestBodyBytes;
  const read = await readLimitedBody(req, limit);
  if (read.kind === 'tooLarge') return tooLarge(res, limit);
  let input = '';
  try {
    const text = read.body.toString('utf8');
    const parsed = read.body.length > 0 ? (JSON.parse(text) as { input?: unknown } | null) : {};
    input = typeof parsed?.input === 'string' ? parsed.input : '';
  } catch {
    return sendProblem(res, 'badRequest', 'The body must be JSON like {"input": ""}.');
  }
  // Malformed percent-encoding cannot name a function: the host leaves it undecoded, so 404.
  const name = decodeSegment(rawName);
  const started = name !== undefined && (await served.triggerNonHttp(name, input));
  if (started) return plain(res, 202, '');
  return sendProblem(res, 'notFound', 'No timer function has this name.');
}

async function handleAdmin(
  served: Served,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const key = presentedKey(req.headers['x-functions-key'], url.searchParams);
  const refused = authFailure('admin', key, served.keys);
  if (refused) return sendProblem(res, 'unauthorized', refused);
  if (req.method === 'GET' && /^\/admin\/host\/status\/?$/i.test(url.pathname)) {
    const body = JSON.stringify({ state: 'Running', version: 'devhost' });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    return void res.end(body);
  }
  const m = /^\/admin\/functions\/([^/]+)\/?$/i.exec(url.pathname);
  if (m && req.method === 'POST') return runNonHttp(served, req, res, m[1] ?? '');
  const served404 = 'devhost serves GET /admin/host/status and POST /admin/functions/{name}.';
  return sendProblem(res, 'notFound', served404);
}

async function invokeHttp(
  served: Served,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  found: Extract<RouteLookup, { kind: 'found' }>,
): Promise<void> {
  const { fn } = found;
  const key = presentedKey(req.headers['x-functions-key'], url.searchParams);
  const refused = authFailure(fn.authLevel, key, served.keys);
  if (refused) return sendProblem(res, 'unauthorized', refused);
  const read = await readLimitedBody(req, served.maxRequestBodyBytes);
  if (read.kind === 'tooLarge') return tooLarge(res, served.maxRequestBodyBytes);
  const data = toRpcHttpRequest({
    method: (req.method ?? 'GET').toUpperCase(),
    url: url.toString(),
    headers: req.headers,
    params: found.params,
    body: read.body,
    query: url.searchParams,
  });
  const result = await served.invoke(fn.fn, { inputData: [{ name: fn.triggerName, data }] });
  if (!result.ok) {
    return sendProblem(res, 'internal', `The function '${fn.name}' failed; see the host's log.`);
  }
  writeResponse(res, fromRpcHttpResponse(findHttpOutput(fn.fn, result.response)));
}

async function handle(served: Served, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = requestUrl(req);
  if (!target.ok) return sendProblem(res, 'badRequest', target.detail, { connection: 'close' });
  const { url } = target;
  if (!served.accepting()) {
    const detail = 'Retry once the host has restarted.';
    return sendProblem(res, 'stopping', detail, { connection: 'close' });
  }
  if (/^\/admin(\/|$)/i.test(url.pathname)) return handleAdmin(served, req, res, url);
  if (url.pathname === '/' && served.prefix !== '')
    return plain(res, 200, 'devhost: the Functions app is running.\n');
  const path = belowPrefix(url.pathname, served.prefix);
  const found =
    path === undefined
      ? ({ kind: 'notFound' } as const)
      : lookupRoute(served.functions, req.method ?? 'GET', path);
  if (found.kind === 'notFound')
    return sendProblem(res, 'notFound', `No function route matches ${url.pathname}.`);
  if (found.kind === 'methodNotAllowed') {
    const allow = found.allow.join(', ');
    return sendProblem(res, 'methodNotAllowed', `This route accepts ${allow}.`, { allow });
  }
  return invokeHttp(served, req, res, url, found);
}

export function createHttpServer(options: HttpServerOptions): Server {
  const served: Served = {
    ...options,
    prefix: options.routePrefix ? `/${options.routePrefix}` : '',
  };
  return configureServer(options, (req, res) => {
    handle(served, req, res).catch((error: unknown) => {
      options.log.error(
        `HTTP request failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      if (!res.headersSent) sendProblem(res, 'internal', 'The host could not answer the request.');
      else res.destroy();
    });
  });
}

/**
 * The `node:http` server with the host's limits: timeouts that close silent or stalled
 * connections, problem answers for unparsable requests, and `Expect: 100-continue` refused with
 * 413 when the declared body is over the limit (so the client never sends it).
 */
function configureServer(
  options: HttpServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const timeouts = { ...defaultHttpTimeouts, ...options.timeouts };
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, timeouts.headersMs / 4)),
      // A missing Host is answered by requestUrl() with a problem, not by Node's empty 400.
      requireHostHeader: false,
    },
    handler,
  );
  server.on('clientError', answerClientError);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = declaredLength(req);
    if (declared !== undefined && declared > options.maxRequestBodyBytes)
      return tooLarge(res, options.maxRequestBodyBytes);
    res.writeContinue();
    handler(req, res);
  });
  return server;
}
