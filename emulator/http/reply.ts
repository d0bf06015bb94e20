/**
 * Writing replies on the REST surfaces, shared by the registry and the device routes: a JSON
 * answer, and a failure as IoT Hub formats it (./errors.ts) with one log line. A hub error is the
 * caller's fault and logged as a warning, except a look-up that finds nothing (404): clients ask
 * for a device to learn whether it exists (get-or-create), so that is logged as information and
 * does not show among `npm start`'s warnings. Anything else is a fault of the local hub, logged
 * with its stack, while the caller only learns "internal error".
 */
import type http from 'node:http';
import type { Logger } from '../context';
import { HubError } from '../core/contracts';
import { toErrorResponse } from './errors';
import type { Response } from './route';

/** Every REST answer is JSON: the SDK ignores bodies of any other content type. */
export function sendJson(res: http.ServerResponse, response: Response): void {
  const payload = response.body === undefined ? '' : JSON.stringify(response.body);
  res.writeHead(response.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...response.headers,
  });
  res.end(payload);
}

/** `label` names the request in the log line (method and path, never a token). */
export function sendFailure(
  res: http.ServerResponse,
  log: Logger,
  label: string,
  error: unknown,
): void {
  const response = toErrorResponse(error);
  if (error instanceof HubError) {
    const level = response.status === 404 ? 'info' : 'warn';
    log[level](`${label} rejected: ${response.status} ${response.code}: ${error.message}`);
  } else {
    log.error(
      `${label} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  }
  if (res.headersSent || res.destroyed) return;
  sendJson(res, { status: response.status, body: response.body });
}
