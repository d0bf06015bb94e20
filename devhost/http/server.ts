/**
 * The HTTP front end: `node:http` on the host's port, routes under the route prefix, keys, and the
 * RPC conversion. A handler that fails yields an empty 500 (the error goes to the console, never
 * to the client).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { RegisteredFunction } from '../core-api';
import type { InvocationInput, InvocationResult } from '../invoke';
import type { HostLog } from '../log';
import type { RpcInvocationResponse, RpcTypedData } from '../rpc-types';
import { fromRpcHttpResponse, toRpcHttpRequest, writeResponse } from './convert';
import type { AuthLevel, HostKeys } from './keys';
import { isAuthorized, parseAuthLevel, presentedKey } from './keys';
import type { CompiledRoute } from './routes';
import { compareRoutes, compileRoute } from './routes';

/** The host's default request size limit (100 MB). */
const maxRequestBytes = 100 * 1024 * 1024;

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
}

function plain(
  res: ServerResponse,
  status: number,
  text = '',
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(text);
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    ...headers,
  });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxRequestBytes) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function createHttpServer(options: HttpServerOptions): Server {
  const prefix = options.routePrefix ? `/${options.routePrefix}` : '';

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const key = presentedKey(req.headers['x-functions-key'], url.searchParams);
    if (!isAuthorized('admin', key, options.keys)) return plain(res, 401);
    if (req.method === 'GET' && /^\/admin\/host\/status\/?$/i.test(url.pathname)) {
      const body = JSON.stringify({ state: 'Running', version: 'devhost' });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      return void res.end(body);
    }
    const m = /^\/admin\/functions\/([^/]+)\/?$/i.exec(url.pathname);
    if (m && req.method === 'POST') {
      const body = (await readBody(req)) ?? Buffer.alloc(0);
      let input = '';
      try {
        const parsed =
          body.length > 0 ? (JSON.parse(body.toString('utf8')) as { input?: unknown }) : {};
        input = typeof parsed.input === 'string' ? parsed.input : '';
      } catch {
        return plain(res, 400, 'Body must be JSON like {"input": ""}');
      }
      const started = await options.triggerNonHttp(decodeURIComponent(m[1] ?? ''), input);
      return plain(res, started ? 202 : 404);
    }
    return plain(res, 404);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    if (!options.accepting()) return plain(res, 503, '', { connection: 'close' });
    if (/^\/admin(\/|$)/i.test(url.pathname)) return handleAdmin(req, res, url);
    if (url.pathname === '/' && prefix !== '')
      return plain(res, 200, 'devhost: the Functions app is running.\n');

    let path = url.pathname;
    if (prefix) {
      const lower = path.toLowerCase();
      if (lower !== prefix && !lower.startsWith(`${prefix}/`)) return plain(res, 404);
      path = path.slice(prefix.length);
    }
    const found = lookupRoute(options.functions, method, path);
    if (found.kind === 'notFound') return plain(res, 404);
    if (found.kind === 'methodNotAllowed')
      return plain(res, 405, '', { allow: found.allow.join(', ') });

    const { fn } = found;
    if (
      !isAuthorized(
        fn.authLevel,
        presentedKey(req.headers['x-functions-key'], url.searchParams),
        options.keys,
      )
    ) {
      return plain(res, 401);
    }
    const body = await readBody(req);
    if (body === undefined) return plain(res, 413);
    const data = toRpcHttpRequest({
      method,
      url: url.toString(),
      headers: req.headers,
      params: found.params,
      body,
    });
    const result = await options.invoke(fn.fn, { inputData: [{ name: fn.triggerName, data }] });
    if (!result.ok) return plain(res, 500);
    writeResponse(res, fromRpcHttpResponse(findHttpOutput(fn.fn, result.response)));
  }

  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.log.error(
        `HTTP request failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      if (!res.headersSent) plain(res, 500);
      else res.destroy();
    });
  });
}
