/**
 * Reading an HTTP request body with a size limit, shared by the REST surfaces. Beyond the limit
 * the request fails with `MessageTooLarge` (413), but the rest is still read and dropped (up to a
 * discard limit), so a client that is still sending gets to read the 413 instead of a connection
 * reset.
 */
import type http from 'node:http';
import { HubError } from '../core/contracts';

/** How much of an oversized body is read and dropped before the connection is cut. */
const maxDiscardBytes = 16 * 1024 * 1024;

function tooLarge(maxBytes: number): HubError {
  return new HubError('MessageTooLarge', `the request body exceeds ${maxBytes} bytes`);
}

function discardRest(req: http.IncomingMessage): void {
  let discarded = 0;
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxDiscardBytes) req.socket.destroy();
  });
  req.resume();
}

/** The whole body, or MessageTooLarge when it (or its declared length) exceeds `maxBytes`. */
export function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    discardRest(req);
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        discardRest(req);
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A request that needs no body: whatever was sent is read and dropped. */
export function ignoreBody(req: http.IncomingMessage): void {
  discardRest(req);
}
