/**
 * What a registry REST handler sees and returns, shared by the route tables (devices, twins,
 * methods) that `registry-adapter.ts` serves.
 */
import type http from 'node:http';
import type { PolicyRight } from '../config';

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

export interface Route {
  method: string;
  /** Literal segments, or ':id' for the device id. */
  pattern: string[];
  right: PolicyRight;
  handler: (request: Request, deviceId: string) => Promise<Response> | Response;
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
