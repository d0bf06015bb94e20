/**
 * The peer of a stream as logs name it: `host:port` for a socket, or `fallback` for a stream that
 * has no address (a WebSocket payload stream, an in-memory pair in tests). Addresses only: never
 * anything the peer sent.
 */
import type { Duplex } from 'node:stream';

export function peerAddress(socket: Duplex, fallback = 'unknown peer'): string {
  const { remoteAddress: host, remotePort: port } = socket as Duplex & {
    remoteAddress?: unknown;
    remotePort?: unknown;
  };
  if (typeof host !== 'string' || host === '') return fallback;
  return typeof port === 'number' ? `${host}:${port}` : host;
}
