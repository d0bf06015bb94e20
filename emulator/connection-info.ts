/**
 * What a running hub tells its clients: the `connection.json` it writes once every listener is up
 * (the one declaration of that file's shape), and the connection strings in it. The hub composes
 * only strings of its own making (its host name, policy names, base64 keys, and device ids a
 * caller passes), so the composer knows the few keys it uses and nothing more.
 */
import { readFileSync } from 'node:fs';

/** `null`: that standard listener is switched off (`--mqtt-port -1`, `--amqp-port -1`). */
export interface BoundPorts {
  /** The TLS gateway: HTTPS, AMQPS and MQTTS, told apart by their first bytes. */
  gateway: number;
  mqtt: number | null;
  amqp: number | null;
  /** The Event Hub-compatible endpoint, plain AMQP. */
  events: number;
}

/** What `connection.json` holds. */
export interface ConnectionInfo {
  serviceConnectionString: string;
  eventsConnectionString: string;
  /**
   * The Event Hub-compatible endpoint over TLS on the AMQPS port (no `UseDevelopmentEmulator`):
   * for clients that only speak TLS. `sb://localhost/` when that port is 5671.
   */
  eventsTlsConnectionString: string;
  eventsName: string;
  caFile: string;
  ports: BoundPorts;
  /**
   * Present only on a hub started with `--manual-clock`: its loopback control endpoint
   * (`POST {url}/clock/advance?ms=N`), see control.ts.
   */
  control?: { url: string };
}

type HubStringKey =
  | 'HostName'
  | 'DeviceId'
  | 'SharedAccessKeyName'
  | 'SharedAccessKey'
  | 'Endpoint'
  | 'EntityPath'
  | 'UseDevelopmentEmulator';

/**
 * `Key=Value;…` in the order given. A `;` inside a value (say, in a device id) would smuggle in a
 * pair of its own, so such a value is refused; the error names the key only (values are secrets).
 */
export function buildConnectionString(fields: Partial<Record<HubStringKey, string>>): string {
  const pairs: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (!value || /;/.test(value)) throw new Error(`${key} must be non-empty and free of ';'`);
    pairs.push(`${key}=${value}`);
  }
  return pairs.join(';');
}

/** `HostName=…` of the hub's service connection string: where device strings point too. */
export function hubHostName(connection: Pick<ConnectionInfo, 'serviceConnectionString'>): string {
  const hostName = /(?:^|;)HostName=([^;]+)/.exec(connection.serviceConnectionString)?.[1];
  if (!hostName) throw new Error('serviceConnectionString has no HostName');
  return hostName;
}

/** A device's connection string on this hub (symmetric key). */
export function deviceConnectionString(
  connection: Pick<ConnectionInfo, 'serviceConnectionString'>,
  deviceId: string,
  key: string,
): string {
  return buildConnectionString({
    HostName: hubHostName(connection),
    DeviceId: deviceId,
    SharedAccessKey: key,
  });
}

/**
 * Parses `connection.json`; throws naming what is missing (never a value). A half-written file
 * cannot be read: the hub writes it atomically.
 */
export function parseConnectionInfo(text: string): ConnectionInfo {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null)
    throw new Error('connection.json is not an object');
  const file = value as Partial<ConnectionInfo>;
  const required = ['serviceConnectionString', 'eventsConnectionString', 'eventsName', 'caFile'];
  const missing = required.filter((key) => typeof file[key as keyof ConnectionInfo] !== 'string');
  if (typeof file.ports?.gateway !== 'number' || typeof file.ports.events !== 'number') {
    missing.push('ports');
  }
  if (missing.length > 0) throw new Error(`connection.json lacks ${missing.join(', ')}`);
  return file as ConnectionInfo;
}

export function readConnectionInfo(file: string): ConnectionInfo {
  return parseConnectionInfo(readFileSync(file, 'utf8'));
}
