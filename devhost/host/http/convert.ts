/**
 * Conversion between Node's HTTP messages and the RPC HTTP shapes, as the host does it for a Node
 * worker that announces `UseNullableValueDictionaryForHttp`, `RpcHttpBodyOnly` and
 * `RawHttpBodyBytes`: lower-case header names, repeated values joined with commas, route
 * parameters in `nullableParams`, the body as bytes (only when there is one).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RpcHttpCookie, RpcHttpData, RpcNullableString, RpcTypedData } from '../rpc-types';

export interface IncomingRequestParts {
  method: string;
  /** Absolute URL. */
  url: string;
  headers: IncomingHttpHeaders;
  params: Record<string, string>;
  body: Buffer;
  /** The query of `url` when the caller has it parsed already (saves parsing the URL again). */
  query?: URLSearchParams;
}

/** A Host header value: a DNS name, IPv4 or bracketed IPv6 address, and an optional port. */
const hostPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::(\d{1,5}))?$/;

export type RequestUrl = { ok: true; url: URL } | { ok: false; detail: string };

/**
 * The absolute URL of a request, from its Host header and request target. A Host that is not
 * `host[:port]` (with a port up to 65535) or a target that is neither a path nor an absolute
 * http(s) URL is the client's error (Kestrel answers 400 too), never a crash. A path that starts
 * with `//` stays a path: it is appended to the origin, not resolved against it.
 */
export function requestUrl(req: IncomingMessage): RequestUrl {
  const host = req.headers.host ?? (req.httpVersion === '1.0' ? 'localhost' : undefined);
  if (host === undefined) return { ok: false, detail: 'HTTP/1.1 requests need a Host header.' };
  const match = hostPattern.exec(host);
  if (!match || (match[1] !== undefined && Number(match[1]) > 65535)) {
    return { ok: false, detail: 'The Host header is not a valid host[:port].' };
  }
  const target = req.url ?? '/';
  try {
    const origin = new URL(`http://${host}`).origin;
    if (target.startsWith('/')) return { ok: true, url: new URL(origin + target) };
    const absolute = new URL(target);
    if (absolute.protocol === 'http:' || absolute.protocol === 'https:')
      return { ok: true, url: new URL(origin + absolute.pathname + absolute.search) };
  } catch {
    // Falls through to the answer below.
  }
  return { ok: false, detail: 'The request target or Host header is not a valid URL.' };
}

function nullable(map: Iterable<[string, string]>): Record<string, RpcNullableString> {
  const out: Record<string, RpcNullableString> = {};
  for (const [key, value] of map) out[key] = { value };
  return out;
}

export function toRpcHttpRequest(parts: IncomingRequestParts): RpcTypedData {
  const headers: [string, string][] = [];
  for (const [name, value] of Object.entries(parts.headers)) {
    if (value === undefined) continue;
    headers.push([name.toLowerCase(), Array.isArray(value) ? value.join(',') : value]);
  }
  const query = new Map<string, string>();
  for (const [key, value] of parts.query ?? new URL(parts.url).searchParams) {
    const previous = query.get(key);
    query.set(key, previous === undefined ? value : `${previous},${value}`);
  }
  const http: RpcHttpData = {
    method: parts.method,
    url: parts.url,
    nullableHeaders: nullable(headers),
    nullableQuery: nullable(query),
    nullableParams: nullable(Object.entries(parts.params)),
  };
  if (parts.body.length > 0) http.body = { bytes: parts.body };
  return { http };
}

/** The bytes of a typed value the way the host writes a response body. */
export function typedDataToBuffer(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes);
  if (data.stream) return Buffer.from(data.stream);
  if (typeof data.string === 'string') return Buffer.from(data.string, 'utf8');
  if (typeof data.json === 'string') return Buffer.from(data.json, 'utf8');
  if (typeof data.int === 'number') return Buffer.from(String(data.int));
  if (typeof data.double === 'number') return Buffer.from(String(data.double));
  return Buffer.alloc(0);
}

export function formatCookie(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name ?? ''}=${cookie.value ?? ''}`];
  if (cookie.domain?.value) parts.push(`domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`path=${cookie.path.value}`);
  const expires = cookie.expires?.value?.seconds;
  if (typeof expires === 'number') parts.push(`expires=${new Date(expires * 1000).toUTCString()}`);
  if (typeof cookie.maxAge?.value === 'number')
    parts.push(`max-age=${Math.trunc(cookie.maxAge.value)}`);
  if (cookie.secure?.value) parts.push('secure');
  if (cookie.sameSite === 'lax') parts.push('samesite=lax');
  else if (cookie.sameSite === 'strict') parts.push('samesite=strict');
  else if (cookie.sameSite === 'explicitNone') parts.push('samesite=none');
  if (cookie.httpOnly?.value) parts.push('httponly');
  return parts.join('; ');
}

export interface OutgoingResponse {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

/** The response the host sends for an HTTP output value; no value at all is 204 No Content. */
export function fromRpcHttpResponse(data: RpcTypedData | null | undefined): OutgoingResponse {
  const http = data?.http;
  if (!http) {
    if (
      data &&
      (data.string !== undefined || data.json !== undefined || data.bytes !== undefined)
    ) {
      return { status: 200, headers: [], body: typedDataToBuffer(data) };
    }
    return { status: 204, headers: [], body: Buffer.alloc(0) };
  }
  const status = http.statusCode ? Number.parseInt(http.statusCode, 10) : 200;
  const headers: [string, string][] = Object.entries(http.headers ?? {});
  for (const cookie of http.cookies ?? []) headers.push(['set-cookie', formatCookie(cookie)]);
  return {
    status: Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500,
    headers,
    body: typedDataToBuffer(http.body),
  };
}

export function writeResponse(res: ServerResponse, response: OutgoingResponse): void {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of response.headers) {
    const key = name.toLowerCase();
    grouped.set(key, [...(grouped.get(key) ?? []), value]);
  }
  for (const [name, values] of grouped) {
    res.setHeader(name, name === 'set-cookie' ? values : values.join(', '));
  }
  if (!grouped.has('content-length') && response.status !== 204 && response.status !== 304) {
    res.setHeader('content-length', response.body.length);
  }
  res.statusCode = response.status;
  res.end(response.status === 204 || response.status === 304 ? undefined : response.body);
}
