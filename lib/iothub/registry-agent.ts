/**
 * `azure-iothub`'s `Registry` always connects to port 443: it hands the connection string's
 * `HostName` to `https.request` as `host`, so `HostName=localhost:4443` fails DNS. This agent
 * splits `host:port` when it opens a connection, which makes the local IoT Hub (and any hub behind
 * a non-standard port) reachable and changes nothing for real Azure, whose host names carry no port.
 *
 * Installing it touches a non-public member of the SDK (`Registry#_restApiClient.setOptions`, the
 * same call the Registry constructor uses to install its own keep-alive agent), so the SDK version
 * is pinned in package.json and the behaviour is covered by test/conformance/registry.test.ts.
 */
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, Registry } from 'azure-iothub';
import { parseIotHubConnectionString } from '../connection-string';

/** `host:port` → parts; a bare host (or an IPv6 literal without brackets) has no port. */
export function splitHostPort(hostName: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostName);
  if (bracketed) {
    const host = bracketed[1] ?? hostName;
    return bracketed[2] ? { host, port: Number(bracketed[2]) } : { host };
  }
  const match = /^([^:]+):(\d+)$/.exec(hostName);
  if (!match?.[1] || !match[2]) return { host: hostName };
  return { host: match[1], port: Number(match[2]) };
}

/**
 * A socket timeout for the agent. Its own value hardly matters (the SDK bounds its calls); what
 * matters is that Node's agent honours a server's `Keep-Alive: timeout=N` hint, closing an idle
 * socket a second before the server does, only when the agent has a timeout at all. Without one, a
 * request sent on a kept-alive socket just as the server closes it fails with "socket hang up" —
 * seen against the local IoT Hub (5 s keep-alive) under bursty load (docs/benchmarks.md, "Round 4").
 */
export const agentSocketTimeoutMs = 60_000;

/**
 * Connections per hub at most; further calls queue for a free one. Unbounded, a burst of calls
 * opened one TLS connection each, and on a small machine the handshakes starved both processes
 * into a spiral of ever more connections (docs/benchmarks.md, "Round 4").
 */
export const agentMaxSockets = 16;

/**
 * An https agent that honours a port embedded in `host` (`localhost:4443`), and the server's
 * keep-alive hint (see `agentSocketTimeoutMs`).
 */
export class HostPortAgent extends https.Agent {
  constructor(options: https.AgentOptions = {}) {
    super({ timeout: agentSocketTimeoutMs, maxSockets: agentMaxSockets, ...options });
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const { host, port } = splitHostPort(options.host ?? options.hostname ?? 'localhost');
    if (port === undefined) return super.createConnection(options, callback);
    return super.createConnection(
      {
        ...options,
        host,
        hostname: host,
        port,
        // SNI must not carry an IP address; the certificate check then uses `host`.
        servername: net.isIP(host) ? '' : host,
      },
      callback,
    );
  }
}

interface RestApiClientLike {
  setOptions?: (options: { http: { agent: https.Agent } }) => void;
}

/**
 * Makes an existing Registry, or the REST path of a service `Client` (`invokeDeviceMethod`, which
 * goes through the same `azure-iot-http-base` client), honour `host:port`. Returns false (and
 * changes nothing) when the host has no port, or when the SDK no longer has the member this
 * relies on.
 */
export function installHostPortAgent(target: Registry | Client, hostName: string): boolean {
  if (splitHostPort(hostName).port === undefined) return false;
  const client = (target as unknown as { _restApiClient?: RestApiClientLike })._restApiClient;
  if (typeof client?.setOptions !== 'function') return false;
  client.setOptions({ http: { agent: new HostPortAgent({ keepAlive: true }) } });
  return true;
}

/** `Registry.fromConnectionString`, plus `host:port` support for a local or proxied hub. */
export function createRegistry(connectionString: string): Registry {
  const registry = Registry.fromConnectionString(connectionString);
  const { hostName } = parseIotHubConnectionString(connectionString);
  if (splitHostPort(hostName).port !== undefined && !installHostPortAgent(registry, hostName)) {
    throw new Error(
      'this azure-iothub version cannot be pointed at a host with a port; expected Registry#_restApiClient.setOptions',
    );
  }
  return registry;
}

/**
 * `Client.fromConnectionString`, plus `host:port` support for its REST calls (direct methods);
 * its AMQP connection already honours a port in the host name.
 */
export function createServiceClient(connectionString: string): Client {
  const client = Client.fromConnectionString(connectionString);
  const { hostName } = parseIotHubConnectionString(connectionString);
  if (splitHostPort(hostName).port !== undefined && !installHostPortAgent(client, hostName)) {
    throw new Error(
      'this azure-iothub version cannot be pointed at a host with a port; expected Client#_restApiClient.setOptions',
    );
  }
  return client;
}
