/**
 * CONNECT: the protocol level and api-version (CONNACK 1), then authentication — clientId = device
 * id, password = the device's SAS token, or the TLS client certificate of an X.509 device
 * (CONNACK 5 for an unknown device or a bad/expired credential, 3 for a disabled device). A device
 * that passes gets a DeviceSession, registered once aedes reports the connection.
 */
import type { X509Certificate } from 'node:crypto';
import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import type { HubHostCheck } from '../auth/hosts';
import { parseSasToken, verifyDeviceToken } from '../auth/sas';
import { authenticateCertificate, presentedChain } from '../auth/x509';
import type { Logger } from '../context';
import { apiVersionInUserName, isKnownApiVersion } from '../core/api-version';
import type { DeviceRecord, IotHubCore } from '../core/contracts';
import { DeviceSession, describe, quote, type SessionOptions } from './device-session';
import type { DeviceSessionRegistry } from './session-registry';

/** CONNACK return codes the SDK translates (5 → UnauthorizedError, 3 → ServiceUnavailableError). */
const connack = { identifierRejected: 2, serverUnavailable: 3, notAuthorized: 5 } as const;

type AuthenticateDone = (error: AuthenticateError | null, success: boolean | null) => void;
type Refuse = (returnCode: 2 | 3 | 5, reason: string) => void;

export interface ConnectOptions {
  core: IotHubCore;
  log: Logger;
  registry: DeviceSessionRegistry;
  namesThisHub: HubHostCheck;
  trustedDeviceCas: readonly X509Certificate[];
  /** C2D messages in flight per connection. */
  c2dWindow: number;
  track: (work: Promise<void>) => void;
}

/**
 * Why a CONNECT gets CONNACK 1 (unacceptable protocol version), or `undefined`: IoT Hub speaks
 * MQTT 3.1.1 (level 4) only, and refuses an `api-version` it does not know. A user name that
 * names no api-version is accepted, as IoT Hub accepts it; a malformed one is left to
 * authentication.
 */
export function protocolRefusal(packet: ConnectPacket): string | undefined {
  if (packet.protocolVersion !== 4) {
    return `MQTT protocol level ${String(packet.protocolVersion)} is not supported (IoT Hub speaks MQTT 3.1.1 only)`;
  }
  const username = packet.username ?? '';
  const afterHost = username.slice(username.indexOf('/') + 1);
  const prefix = `${packet.clientId}/`;
  if (username.indexOf('/') < 0 || !afterHost.startsWith(prefix)) return undefined;
  const version = apiVersionInUserName(afterHost.slice(prefix.length));
  if (version === undefined || isKnownApiVersion(version)) return undefined;
  return `unknown api-version ${JSON.stringify(version.slice(0, 40))} in the user name`;
}

export class ConnectHandler {
  constructor(private readonly options: ConnectOptions) {}

  /**
   * aedes' `preConnect`. Every session is clean for aedes: IoT Hub's C2D queue lives in the core,
   * and aedes' own offline queue would deliver duplicates. The SDK re-subscribes on every connect.
   */
  readonly preConnect = (
    client: Client,
    packet: ConnectPacket,
    callback: (error: Error | null, success: boolean) => void,
  ): void => {
    packet.clean = true;
    const refusal = protocolRefusal(packet);
    if (refusal !== undefined) {
      this.options.registry.markDropped(client);
      this.options.log.warn(
        `refused ${quote(packet.clientId)} from ${this.options.registry.remoteOf(client)} (CONNACK 1): ${refusal}`,
      );
      // The `authenticate` hook cannot answer CONNACK 1; aedes itself answers it (and closes)
      // for a protocol level it does not know, so the packet is presented as such a level.
      (packet as { protocolVersion: number }).protocolVersion = 0;
    }
    callback(null, true);
  };

  /** aedes' `authenticate`; a bug in the checks answers CONNACK 3 rather than escaping. */
  readonly authenticate = (
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: AuthenticateDone,
  ): void => {
    try {
      this.checkCredentials(client, username, password, done);
    } catch (error) {
      this.options.log.error(`authenticating ${quote(client.id)} failed: ${describe(error)}`);
      done(
        Object.assign(new Error('server error'), { returnCode: connack.serverUnavailable }),
        false,
      );
    }
  };

  private refuser(client: Client, done: AuthenticateDone): Refuse {
    return (returnCode, reason) => {
      this.options.registry.markDropped(client);
      this.options.log.warn(
        `refused device ${quote(client.id)} from ${this.options.registry.remoteOf(client)} (CONNACK ${returnCode}): ${reason}`,
      );
      done(Object.assign(new Error(reason), { returnCode }), false);
    };
  }

  private checkCredentials(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: AuthenticateDone,
  ): void {
    const { core, namesThisHub } = this.options;
    const deviceId = client.id;
    const refuse = this.refuser(client, done);
    const device = core.registry.get(deviceId);
    // A module's client id is `<device>/<module>`: not served, and no wrong key (CONNACK 2).
    if (!device && deviceId.includes('/')) {
      return refuse(connack.identifierRejected, 'module identities (IoT Edge) are not supported');
    }
    if (!device) return refuse(connack.notAuthorized, 'unknown device');
    const slash = username?.indexOf('/') ?? -1;
    if (
      username === undefined ||
      slash < 0 ||
      !namesThisHub(username.slice(0, slash)) ||
      !username.slice(slash + 1).startsWith(`${deviceId}/`)
    ) {
      return refuse(connack.notAuthorized, 'user name must be <hub host>/<device id>/…');
    }
    if (device.authentication) {
      return this.acceptCertificate(client, device, refuse, done);
    }
    if (password === undefined) return refuse(connack.notAuthorized, 'no SAS token as password');
    const token = password.toString('utf8');
    let expiresAt: number;
    try {
      verifyDeviceToken(token, device, core.clock.now(), namesThisHub);
      expiresAt = parseSasToken(token).se * 1000;
    } catch (error) {
      return refuse(connack.notAuthorized, describe(error));
    }
    if (device.status === 'disabled')
      return refuse(connack.serverUnavailable, 'device is disabled');
    this.admit(client, { deviceId, token, namesThisHub, expiresAt });
    done(null, true);
  }

  /**
   * An X.509 device: the certificate from the TLS handshake authenticates it (no password, as
   * the SDK sends none); re-checked against the registry whenever the device changes.
   */
  private acceptCertificate(
    client: Client,
    device: DeviceRecord,
    refuse: Refuse,
    done: AuthenticateDone,
  ): void {
    const { core, trustedDeviceCas } = this.options;
    const chain = presentedChain(client.conn);
    const check = (current: DeviceRecord): string =>
      authenticateCertificate({
        device: current,
        chain,
        trustedCas: trustedDeviceCas,
        nowMs: core.clock.now(),
      });
    let authMethod: string;
    try {
      authMethod = check(device);
    } catch (error) {
      return refuse(connack.notAuthorized, describe(error));
    }
    if (device.status === 'disabled')
      return refuse(connack.serverUnavailable, 'device is disabled');
    const expiresAt = Date.parse(chain?.[0]?.validTo ?? '');
    this.admit(
      client,
      { deviceId: device.deviceId, recheck: (current) => void check(current), expiresAt },
      authMethod,
    );
    done(null, true);
  }

  private admit(
    client: Client,
    credential: Pick<
      SessionOptions,
      'deviceId' | 'token' | 'namesThisHub' | 'recheck' | 'expiresAt'
    >,
    authMethod?: string,
  ): void {
    const { core, log, c2dWindow, track, registry } = this.options;
    const session = new DeviceSession({
      core,
      log,
      remoteAddress: registry.remoteOf(client),
      c2dWindow,
      track,
      ...credential,
    });
    registry.authenticated(client, session, authMethod);
  }
}
