/**
 * Reading what the HTTP handlers answer, and the invocation context they are called with, for
 * tests that call the handlers directly (no Functions host).
 */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';

const problemTypeBase = 'https://iot-hub-functions.dev/problems/';

/** The response body, parsed as JSON (the handlers answer JSON text). */
export function json<T = Record<string, unknown>>(response: HttpResponseInit): T {
  return JSON.parse(response.body as string) as T;
}

/** A response header; the handlers set headers as a plain object. */
export function header(response: HttpResponseInit, name: string): string | undefined {
  return (response.headers as Record<string, string>)[name];
}

/** A problem response's slug: `device-not-found` for `…/problems/device-not-found`. */
export function problemType(response: HttpResponseInit): string {
  return String(json(response).type).replace(problemTypeBase, '');
}

/** An invocation context that appends every log line (its arguments joined) to `lines`. */
export function contextLoggingTo(lines: string[]): InvocationContext {
  return new InvocationContext({
    logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')),
  });
}

/** One page of a list endpoint's answer. */
export interface ListPage<Item> {
  items: Item[];
  continuationToken?: string;
}

/**
 * Reads a list endpoint `pageSize` items at a time, following continuation tokens to the last
 * page (at most `maxPages`, so a token that never ends fails the test instead of hanging it).
 * Every page must be a 200 with at most `pageSize` items.
 */
export async function readPages<Item>(
  list: (url: string) => Promise<HttpResponseInit>,
  base: string,
  pageSize: number,
  maxPages = 50,
): Promise<ListPage<Item>[]> {
  const pages: ListPage<Item>[] = [];
  let token: string | undefined;
  do {
    const url = new URL(base);
    url.searchParams.set('pageSize', String(pageSize));
    if (token) url.searchParams.set('continuationToken', token);
    const response = await list(url.toString());
    expect(response.status).toBe(200);
    const page = json<ListPage<Item>>(response);
    expect(page.items.length).toBeLessThanOrEqual(pageSize);
    pages.push(page);
    token = page.continuationToken;
  } while (token && pages.length < maxPages);
  return pages;
}

/** A request as the Functions host hands it to a handler (JSON content type when there is a body). */
export function apiRequest(
  method: string,
  url: string,
  init: { body?: string; headers?: Record<string, string>; params?: Record<string, string> } = {},
): HttpRequest {
  return new HttpRequest({
    method,
    url,
    ...(init.body !== undefined ? { body: { string: init.body } } : {}),
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    params: init.params ?? {},
  });
}

/** Asserts a problem+json response of `status` and `slug`, with no stack trace; returns its body. */
export function expectProblem(
  response: HttpResponseInit,
  status: number,
  slug: string,
): Record<string, unknown> {
  expect(response.status).toBe(status);
  expect(header(response, 'Content-Type')).toBe('application/problem+json');
  const body = json(response);
  expect(body).toMatchObject({ type: `${problemTypeBase}${slug}`, status });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(response.body).not.toMatch(/\n\s+at /);
  return body;
}
