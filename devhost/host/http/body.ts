/**
 * Request bodies under the host's size limit (`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`, 100 MB by
 * default as in the Functions host). The limit is enforced while the body streams in: a declared
 * `Content-Length` over it is refused before a byte is read, and a chunked body stops being
 * stored at the first chunk that crosses it, so an oversized upload never sits in memory.
 */
import type { IncomingMessage } from 'node:http';
import { AppConfigError } from '../app-config';

/** The Functions host's default request body limit: 104857600 bytes. */
export const defaultMaxRequestBodyBytes = 100 * 1024 * 1024;

/** The limit from the `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` app setting (bytes), as the host reads it. */
export function maxRequestBodyBytesFrom(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return defaultMaxRequestBodyBytes;
  const bytes = Number(value.trim());
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new AppConfigError(
      'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT must be a positive number of bytes',
    );
  }
  return bytes;
}

/** The declared body length, or undefined for chunked (or absent) bodies. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

export type BodyRead = { kind: 'complete'; body: Buffer } | { kind: 'tooLarge' };

/**
 * Reads the body up to `limit` bytes. Past the limit the request is paused and nothing more is
 * kept; the caller answers 413 with `Connection: close`, and Node then discards whatever is still
 * in flight and closes the socket.
 */
export function readLimitedBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  const declared = declaredLength(req);
  if (declared !== undefined && declared > limit) return Promise.resolve({ kind: 'tooLarge' });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.off('end', onEnd);
      req.pause();
      chunks.length = 0;
      resolve({ kind: 'tooLarge' });
    };
    const onEnd = () => resolve({ kind: 'complete', body: Buffer.concat(chunks, size) });
    req.on('data', onData);
    req.on('end', onEnd);
    req.once('error', reject);
  });
}
