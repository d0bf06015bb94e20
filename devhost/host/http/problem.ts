/**
 * The host's own error answers as RFC 9457 problem details (`application/problem+json`), so that
 * someone reading curl output learns what went wrong. The real host sends most of these with an
 * empty body; the status codes are the same. A detail names the header or parameter at fault,
 * never a key or other value the client sent.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The same base as the app's API problems, so clients switch on one family of `type` URIs. */
export const hostProblemTypeBase = 'https://iot-hub-functions.dev/problems/';

export const hostProblemKinds = {
  badRequest: { slug: 'bad-request', status: 400, title: 'The request is malformed' },
  unauthorized: {
    slug: 'unauthorized',
    status: 401,
    title: 'A valid function key is required',
  },
  notFound: { slug: 'not-found', status: 404, title: 'Nothing is served at this path' },
  methodNotAllowed: {
    slug: 'method-not-allowed',
    status: 405,
    title: 'The route does not accept this method',
  },
  requestTimeout: {
    slug: 'request-timeout',
    status: 408,
    title: 'The request did not arrive in time',
  },
  payloadTooLarge: {
    slug: 'payload-too-large',
    status: 413,
    title: 'The request body or message is too large',
  },
  headersTooLarge: {
    slug: 'headers-too-large',
    status: 431,
    title: 'The request headers are too large',
  },
  internal: { slug: 'internal', status: 500, title: 'An unexpected error occurred' },
  stopping: { slug: 'host-stopping', status: 503, title: 'The Functions host is stopping' },
} as const satisfies Record<string, { slug: string; status: number; title: string }>;

export type HostProblemKind = keyof typeof hostProblemKinds;

/** The bytes and headers of one problem answer. */
function problemBytes(kind: HostProblemKind, detail: string): Buffer {
  const spec = hostProblemKinds[kind];
  return Buffer.from(
    JSON.stringify({
      type: hostProblemTypeBase + spec.slug,
      title: spec.title,
      status: spec.status,
      detail,
    }),
  );
}

/** Answers with a problem; `headers` may add `Allow`, `Connection: close` and the like. */
export function sendProblem(
  res: ServerResponse,
  kind: HostProblemKind,
  detail: string,
  headers: Record<string, string> = {},
): void {
  const body = problemBytes(kind, detail);
  res.writeHead(hostProblemKinds[kind].status, {
    'content-type': 'application/problem+json',
    'content-length': body.length,
    ...headers,
  });
  res.end(body);
}

const reasonPhrases: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * `clientError` handler: a request Node could not parse (or that timed out before it was
 * complete) gets a problem answer instead of Node's empty one, then the connection is closed.
 * Nothing is written when a response is already under way on the socket, or when the client has
 * sent nothing at all.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  const busy = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  // A connection that never sent a byte (half-open, or a port scan) is closed without a word.
  if (!socket.writable || busy?.headersSent || socket.bytesRead === 0) {
    socket.destroy();
    return;
  }
  let kind: HostProblemKind = 'badRequest';
  let detail = 'The request is not valid HTTP/1.1.';
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    kind = 'requestTimeout';
    detail = 'The request headers or body did not arrive in time; the connection is closed.';
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    kind = 'headersTooLarge';
    detail = 'The request line and headers exceed the size the host accepts.';
  }
  const status = hostProblemKinds[kind].status;
  const body = problemBytes(kind, detail);
  socket.end(
    `HTTP/1.1 ${status} ${reasonPhrases[status] ?? ''}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString('utf8')}`,
  );
}
