/**
 * What `npm run monitor` and `npm run simulate` check before they start, so they fail in a second
 * or two with a reason instead of an SDK's silent minutes of retries: the local hub's
 * `connection.json` exists and parses, and something listens where a connection string points
 * (a `connection.json` left from an earlier run names ports nobody listens on any more).
 */
import type { ConnectionInfo } from '@iot-hub-functions/local-iothub';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { parseConnectionString } from '../../lib/connection-string';

export class LocalHubError extends Error {
  override name = 'LocalHubError';
}

/**
 * The part of the hub's `connection.json` (the package's `ConnectionInfo`) these tools need; only
 * the connection strings are required, so a file written by hand for another hub works too.
 */
export type LocalHubFile = Pick<
  ConnectionInfo,
  'serviceConnectionString' | 'eventsConnectionString'
> &
  Partial<Pick<ConnectionInfo, 'caFile'>> & { file: string };

/** `$LOCAL_DATA_DIR/iothub/connection.json` (`LOCAL_DATA_DIR` defaults to `.local`). */
export function defaultConnectionFile(env: NodeJS.ProcessEnv): string {
  return join(resolve(env.LOCAL_DATA_DIR ?? '.local'), 'iothub', 'connection.json');
}

/** Reads the local hub's `connection.json`; a missing or unreadable file says how to get one. */
export function readLocalHubFile(file: string, alternative: string): LocalHubFile {
  if (!existsSync(file)) {
    throw new LocalHubError(
      `no local IoT Hub: ${file} does not exist. Start it with npm start (or npm run emulator), or set ${alternative}`,
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new LocalHubError(`${file} is not valid JSON; restart the local IoT Hub to rewrite it`);
  }
  const { serviceConnectionString, eventsConnectionString, caFile } = parsed;
  if (typeof serviceConnectionString !== 'string' || typeof eventsConnectionString !== 'string') {
    throw new LocalHubError(`${file} has no connection strings; restart the local IoT Hub`);
  }
  return {
    file,
    serviceConnectionString,
    eventsConnectionString,
    ...(typeof caFile === 'string' ? { caFile } : {}),
  };
}

/**
 * Host and port a connection string points at: `HostName=host[:port]` (HTTPS, 443) or
 * `Endpoint=sb://host[:port]/` (AMQP: 5672 for the development emulator, else 5671).
 */
export function endpointOf(connectionString: string): { host: string; port: number } {
  const parts = parseConnectionString(connectionString);
  const hostName = parts.HostName;
  const endpoint = parts.Endpoint ? /^sb:\/\/([^/]+)/i.exec(parts.Endpoint)?.[1] : undefined;
  const target = hostName ?? endpoint;
  if (!target) throw new LocalHubError('the connection string names no HostName or Endpoint');
  const [host = '', port] = target.split(':');
  const fallback = hostName ? 443 : parts.UseDevelopmentEmulator === 'true' ? 5672 : 5671;
  return { host, port: port ? Number(port) : fallback };
}

/** Resolves once a TCP connection to host:port opens; rejects with the reason within `timeoutMs`. */
export function probe(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((done, fail) => {
    const socket = connect({ host, port });
    const finish = (error?: Error) => {
      socket.destroy();
      if (error) fail(error);
      else done();
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('connect', () => finish());
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(new Error(error.code ?? error.message)),
    );
  });
}

/**
 * Fails with a reason when nothing answers where `connectionString` points. `file` (the local
 * hub's connection.json the string came from) turns a refusal into "the file is stale".
 */
export async function checkReachable(
  connectionString: string,
  what: string,
  file?: string,
): Promise<void> {
  const { host, port } = endpointOf(connectionString);
  try {
    await probe(host, port);
  } catch (error) {
    const reason = (error as Error).message;
    if (file) {
      throw new LocalHubError(
        `the local IoT Hub is not running: nothing answers at ${host}:${port} (${reason}), the ${what} that ${file} names. That file is left from an earlier run; start the hub with npm start (or npm run emulator)`,
      );
    }
    throw new LocalHubError(`cannot reach the ${what} at ${host}:${port} (${reason})`);
  }
}
