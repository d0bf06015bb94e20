/**
 * devhost's HTTP server on its own (in-process, ephemeral port), with a stub in place of the
 * invocation pipeline: what the host answers itself — problem+json for its errors, bad Host and
 * request targets, the streaming body limit, and the timeouts that close silent connections.
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { RegisteredFunction } from '../../../../../devhost/host/core-api';
import { maxRequestBodyBytesFrom } from '../../../../../devhost/host/http/body';
import type { HttpServerOptions, HttpTimeouts } from '../../../../../devhost/host/http/server';
import {
  createHttpServer,
  sortHttpFunctions,
  toHttpFunction,
} from '../../../../../devhost/host/http/server';
import type { InvocationInput, InvocationResult } from '../../../../../devhost/host/invoke';
import type { HostLog } from '../../../../../devhost/host/log';
import { until } from '../../../../support/wait';

const keys = { functionKey: 'fn-key-secret', masterKey: 'master-key-secret' };
const limit = 64 * 1024;
const problemBase = 'https://iot-hub-functions.dev/problems/';

function httpFunction(name: string, route: string, methods: string[], authLevel: string) {
  const fn: RegisteredFunction = {
    metadata: {
      name,
      bindings: {
        trigger: { type: 'httpTrigger', direction: 'in', route, methods, authLevel },
        $return: { type: 'http', direction: 'out' },
      },
    },
    callback: () => undefined,
  };
  return toHttpFunction(fn, (value) => value);
}

interface Harness {
  server: Server;
  port: number;
  invoked: InvocationInput[];
  logged: string[];
}

/** Starts the server on port 0; the stub invocation answers 200 with the body length it got. */
async function startServer(
  timeouts?: Partial<HttpTimeouts>,
  fails: ReadonlySet<string> = new Set(['boom']),
): Promise<Harness> {
  const invoked: InvocationInput[] = [];
  const logged: string[] = [];
  const log: HostLog = {
    info: () => undefined,
    warn: () => undefined,
    error: (m) => logged.push(m),
    invocation: () => undefined,
  };
  const options: HttpServerOptions = {
    functions: sortHttpFunctions([
      httpFunction('health', 'health', ['GET'], 'anonymous'),
      httpFunction('upload', 'upload', ['POST'], 'function'),
      httpFunction('boom', 'boom', ['GET'], 'anonymous'),
    ]),
    routePrefix: 'api',
    keys,
    log,
    invoke: (fn, input): Promise<InvocationResult> => {
      invoked.push(input);
      const base = { invocationId: 'id', durationMs: 1 };
      if (fails.has(fn.metadata.name))
        return Promise.resolve({ ...base, ok: false, error: new Error('internal detail') });
      const bytes = input.inputData?.[0]?.data?.http?.body?.bytes;
      const json = JSON.stringify({ bytes: bytes ? bytes.length : 0 });
      return Promise.resolve({ ...base, ok: true, response: { returnValue: { json } } });
    },
    triggerNonHttp: (name) => Promise.resolve(name === 'tick'),
    accepting: () => true,
    maxRequestBodyBytes: limit,
    timeouts,
  };
  const server = createHttpServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, invoked, logged };
}

async function stopServer(harness: Harness): Promise<void> {
  harness.server.closeAllConnections();
  await new Promise((resolve) => harness.server.close(resolve));
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request through `node:http` (which, unlike fetch, sends any Host header it is given). */
function send(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Resolves when a request can take more data, or is gone; removes both listeners again. */
function drainedOrClosed(req: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

function expectProblem(answer: Answer, status: number, slug: string): Record<string, unknown> {
  expect({ status: answer.status, type: answer.headers['content-type'] }).toEqual({
    status,
    type: 'application/problem+json',
  });
  const problem = JSON.parse(answer.text) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: problemBase + slug, status });
  expect(typeof problem.title).toBe('string');
  expect(typeof problem.detail).toBe('string');
  return problem;
}

/** Writes raw bytes on a socket and collects everything until the server closes it. */
function rawExchange(port: number, text: string): { socket: Socket; received: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const received = new Promise<string>((resolve) =>
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8'))),
  );
  socket.on('error', () => undefined);
  if (text) socket.write(text);
  return { socket, received };
}

describe('devhost HTTP server: no 5xx from bad input', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(() => stopServer(h));

  it.each([['['], ['localhost:99999'], ['a/b'], ['user@host']])(
    'answers Host: %s with 400 problem+json and invokes nothing',
    async (host) => {
      const before = h.invoked.length;
      const answer = await send(h.port, '/api/health', { headers: { host } });
      expect(expectProblem(answer, 400, 'bad-request').detail).toMatch(/Host header/);
      expect(h.invoked.length).toBe(before);
    },
  );

  it('keeps a path that starts with // a path instead of reading a host out of it', async () => {
    expect((await send(h.port, '/api/health')).status).toBe(200);
    expectProblem(await send(h.port, '//evil/api/health'), 404, 'not-found');
  });

  it('answers malformed percent-encoding in an admin function name with 404, not 500', async () => {
    const answer = await send(h.port, '/admin/functions/%E0%A4%A', {
      method: 'POST',
      headers: { 'x-functions-key': keys.masterKey },
    });
    expectProblem(answer, 404, 'not-found');
    const started = await send(h.port, '/admin/functions/tick', {
      method: 'POST',
      headers: { 'x-functions-key': keys.masterKey },
    });
    expect(started.status).toBe(202);
  });

  it('answers an unparsable request with 400 problem+json', async () => {
    const { received } = rawExchange(h.port, 'GET /api/health HTTP/1.1\r\nHost localhost\r\n\r\n');
    const text = await received;
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/content-type: application\/problem\+json/i);
    expect(text).toContain(`"type":"${problemBase}bad-request"`);
  });
});

describe('devhost HTTP server: problem+json for the host’s own errors', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(() => stopServer(h));

  it('401 says which key is missing or wrong, and never echoes a key', async () => {
    const none = expectProblem(
      await send(h.port, '/api/upload', { method: 'POST' }),
      401,
      'unauthorized',
    );
    expect(none.detail).toMatch(/function key.*none was sent/);
    const wrong = await send(h.port, '/api/upload', {
      method: 'POST',
      headers: { 'x-functions-key': 'wrong-key-value' },
    });
    expect(expectProblem(wrong, 401, 'unauthorized').detail).toMatch(/x-functions-key header/);
    expect(wrong.text).not.toContain('wrong-key-value');
    const query = await send(h.port, '/api/upload?code=wrong-code-value', { method: 'POST' });
    expect(expectProblem(query, 401, 'unauthorized').detail).toMatch(/code query parameter/);
    expect(query.text).not.toContain('wrong-code-value');
    const functionKeyOnAdmin = await send(h.port, '/admin/host/status', {
      headers: { 'x-functions-key': keys.functionKey },
    });
    expect(expectProblem(functionKeyOnAdmin, 401, 'unauthorized').detail).toMatch(/master key/);
    for (const answer of [none, wrong, query, functionKeyOnAdmin])
      expect(JSON.stringify(answer)).not.toMatch(/fn-key-secret|master-key-secret/);
  });

  it('404 and 405 (with Allow) are problems', async () => {
    expectProblem(await send(h.port, '/api/nope'), 404, 'not-found');
    expectProblem(await send(h.port, '/elsewhere'), 404, 'not-found');
    const wrongMethod = await send(h.port, '/api/health', { method: 'DELETE' });
    expectProblem(wrongMethod, 405, 'method-not-allowed');
    expect(wrongMethod.headers.allow).toBe('GET');
  });

  it('a failing function is a 500 problem that names the function, not the error', async () => {
    const answer = await send(h.port, '/api/boom');
    expect(expectProblem(answer, 500, 'internal').detail).toContain("'boom'");
    expect(answer.text).not.toContain('internal detail');
  });
});

describe('devhost HTTP server: request body limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
  });
  afterAll(() => stopServer(h));
  const auth = { 'x-functions-key': keys.functionKey };

  it('passes a body at the limit to the function', async () => {
    const answer = await send(h.port, '/api/upload', {
      method: 'POST',
      headers: auth,
      body: Buffer.alloc(limit, 7),
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ bytes: limit });
  });

  it('answers 413 to a streaming body while it is still being sent, and never invokes', async () => {
    const before = h.invoked.length;
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const answer = await new Promise<{ status: number; text: string; sentWhenAnswered: number }>(
      (resolve, reject) => {
        let answered = false;
        const req = httpRequest({
          host: '127.0.0.1',
          port: h.port,
          path: '/api/upload',
          method: 'POST',
          headers: { ...auth, 'transfer-encoding': 'chunked' },
        });
        req.on('response', (res) => {
          answered = true;
          const sentWhenAnswered = sent;
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text, sentWhenAnswered }));
        });
        req.on('error', (error) => {
          if (!answered) reject(error);
        });
        void (async () => {
          // Writes with back-pressure, so `sent` is what the server could have read so far.
          while (!answered && sent < total) {
            sent += chunk.length;
            if (!req.write(chunk)) await drainedOrClosed(req);
          }
          if (!answered) req.end();
        })();
      },
    );
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text)).toMatchObject({ type: `${problemBase}payload-too-large` });
    // The answer came long before the body was complete: the server stopped reading at the limit.
    expect(answer.sentWhenAnswered).toBeLessThan(total / 4);
    expect(h.invoked.length).toBe(before);
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const { received } = rawExchange(
      h.port,
      `POST /api/upload HTTP/1.1\r\nHost: localhost\r\nx-functions-key: ${keys.functionKey}\r\n` +
        `Content-Length: ${100 * 1024 * 1024}\r\n\r\n`,
    );
    const text = await received;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toContain('payload-too-large');
  });

  it('answers Expect: 100-continue with 413 instead of 100 when the body would be too large', async () => {
    const { received } = rawExchange(
      h.port,
      `POST /api/upload HTTP/1.1\r\nHost: localhost\r\nx-functions-key: ${keys.functionKey}\r\n` +
        `Content-Length: ${limit + 1}\r\nExpect: 100-continue\r\n\r\n`,
    );
    const text = await received;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).not.toContain('100 Continue');
  });

  it('reads the limit from FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, 100 MB by default', () => {
    expect(maxRequestBodyBytesFrom(undefined)).toBe(104857600);
    expect(maxRequestBodyBytesFrom(' 1048576 ')).toBe(1048576);
    expect(() => maxRequestBodyBytesFrom('lots')).toThrow(/FUNCTIONS_REQUEST_BODY_SIZE_LIMIT/);
    expect(() => maxRequestBodyBytesFrom('0')).toThrow(/positive/);
  });
});

describe('devhost HTTP server: idle and stalled connections', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ headersMs: 200, requestMs: 400, keepAliveMs: 200 });
  });
  afterAll(() => stopServer(h));

  it('closes a connection that never sends a byte', async () => {
    const { socket, received } = rawExchange(h.port, '');
    expect(await until('silent socket closed', () => settled(received), 10_000)).toBe('');
    expect(socket.destroyed).toBe(true);
  });

  it('answers 408 problem+json and closes a connection whose headers stall', async () => {
    const { received } = rawExchange(h.port, 'GET /api/health HTTP/1.1\r\nHost: x\r\n');
    const text = await until('stalled socket closed', () => settled(received), 10_000);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('request-timeout');
  });

  it('closes a kept-alive connection that stays idle after a request', async () => {
    const { received } = rawExchange(h.port, 'GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    const text = await until('idle keep-alive socket closed', () => settled(received), 10_000);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
  });
});

/** The value of a promise if it has settled, else undefined (for polling with `until`). */
function settled<T>(promise: Promise<T>): Promise<T | undefined> {
  return Promise.race([promise, Promise.resolve(undefined)]);
}
