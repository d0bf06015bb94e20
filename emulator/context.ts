/**
 * What every protocol adapter is given, and what it gives back. `server.ts` owns the sockets:
 * it terminates TLS on the gateway port, sniffs the first bytes (AMQP header, HTTP method, MQTT
 * CONNECT) and hands the socket to the matching adapter's `handle`.
 */
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { HubIdentity } from './config';
import type { IotHubCore } from './core/contracts';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface EmulatorContext {
  core: IotHubCore;
  identity: HubIdentity;
  /** `host:port` of the gateway as clients address it (the connection string's HostName). */
  hostName: string;
  /** CAs whose certificates authenticate `certificateAuthority` devices (`--trusted-device-ca`). */
  trustedDeviceCas?: readonly X509Certificate[];
  log: Logger;
}

/** A protocol surface served on a socket that `server.ts` accepted (TLS already terminated). */
export interface ProtocolAdapter {
  /** Take over a connection; the sniffed first bytes have been pushed back into the stream. */
  handle(socket: Duplex): void;
  /** Close every connection it holds. */
  close(): Promise<void>;
}
