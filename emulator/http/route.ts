/**
 * The route tables of the REST surfaces: what a handler sees and returns, how a table entry is
 * written (`route('GET', 'devices/:id', 'RegistryRead', getDevice)`, one line each) and how a
 * request's path finds its entry. Shared concerns (api-version, authentication, body limits,
 * error replies) are done once by the adapter that serves the table, never by a handler.
 */
import type http from 'node:http';
import type { PolicyRight } from '../config';
import type { IotHubCore } from '../core/contracts';

export interface Request {
  method: string;
  /** Decoded path segments, e.g. ['devices', 'my device']. */
  segments: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface Response {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Everything a registry handler may use, passed explicitly rather than closed over. */
export interface RouteInput {
  core: IotHubCore;
  request: Request;
  /** The `:id` segment of the path; '' when the pattern has none. */
  deviceId: string;
}

export type RouteHandler = (input: RouteInput) => Promise<Response> | Response;

export interface Route {
  method: string;
  /** Literal segments (matched case-insensitively), or ':name' for any non-empty segment. */
  pattern: string[];
  /** The shared access policy right a caller's token must grant. */
  right: PolicyRight;
  handler: RouteHandler;
}

/** One table entry: `path` is written as in the URL, e.g. 'devices/:id/commands'. */
export function route(
  method: string,
  path: string,
  right: PolicyRight,
  handler: RouteHandler,
): Route {
  return { method, pattern: path.split('/'), right, handler };
}

/**
 * The values of a pattern's ':name' segments when `segments` fit it, undefined otherwise.
 * Literals compare case-insensitively, as IoT Hub's paths do.
 */
export function matchPattern(
  pattern: readonly string[],
  segments: readonly string[],
): Map<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params = new Map<string, string>();
  for (const [i, part] of pattern.entries()) {
    const segment = segments[i] ?? '';
    if (part.startsWith(':')) {
      if (segment === '') return undefined;
      params.set(part.slice(1), segment);
    } else if (part !== segment.toLowerCase()) {
      return undefined;
    }
  }
  return params;
}

/** The first entry of `table` for this method and path, with its path parameters. */
export function findRoute<R extends { method: string; pattern: readonly string[] }>(
  table: readonly R[],
  method: string,
  segments: readonly string[],
): { route: R; params: Map<string, string> } | undefined {
  for (const entry of table) {
    if (entry.method !== method) continue;
    const params = matchPattern(entry.pattern, segments);
    if (params) return { route: entry, params };
  }
  return undefined;
}

export function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `"*"` or `"<etag>"` as sent; the quotes are not part of the etag. */
export function ifMatchOf(headers: http.IncomingHttpHeaders): string | undefined {
  const value = header(headers, 'if-match');
  if (value === undefined) return undefined;
  return value
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}
