/**
 * The loopback control endpoint of a hub started with `--manual-clock`: a test in another process
 * moves the hub's time forward (TTL expiry, lock timeouts, feedback batches) instead of sleeping.
 *
 * `POST /clock/advance?ms=N` fires every timer that falls due on the way and answers
 * `{"now": <epoch ms>}`; `GET /clock` answers the same without moving. Plain HTTP on 127.0.0.1 on
 * an ephemeral port (named in `connection.json` as `control.url`), never on the hub's public
 * listeners; a request that does not come from loopback is refused with 403 all the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeClock } from './core/clock';

export interface ControlEndpoint {
  url: string;
  close(): Promise<void>;
}

const loopback = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
/** One call moves at most a year: enough for any TTL, and no overflow of the clock. */
const maxAdvanceMs = 366 * 24 * 3_600_000;

function reply(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function handle(clock: FakeClock, request: http.IncomingMessage, response: http.ServerResponse) {
  if (!loopback.has(request.socket.remoteAddress ?? '')) {
    reply(response, 403, { error: 'the control endpoint answers loopback callers only' });
    return;
  }
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (url.pathname === '/clock' && request.method === 'GET') {
    reply(response, 200, { now: clock.now() });
    return;
  }
  if (url.pathname !== '/clock/advance' || request.method !== 'POST') {
    reply(response, 404, { error: 'use POST /clock/advance?ms=N or GET /clock' });
    return;
  }
  const text = url.searchParams.get('ms') ?? '';
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms > maxAdvanceMs) {
    reply(response, 400, { error: `ms must be an integer from 0 to ${maxAdvanceMs}` });
    return;
  }
  clock.advance(ms);
  reply(response, 200, { now: clock.now() });
}

/** Serves `clock`'s control calls on 127.0.0.1, an ephemeral port. */
export function startControlEndpoint(clock: FakeClock): Promise<ControlEndpoint> {
  const server = http.createServer((request, response) => {
    // The body is never read; drain it so the connection can be reused.
    request.resume();
    handle(clock, request, response);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
