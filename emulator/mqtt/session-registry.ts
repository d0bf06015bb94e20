/**
 * Who is connected over MQTT: each aedes client's authenticated DeviceSession, the one registered
 * connection per device, and the bookkeeping around a connection's life (its peer address, how it
 * authenticated, whether this adapter dropped it). A second connection with the same device id
 * takes over: aedes closes the first, and the registry keeps the newer one registered. C2D
 * deliveries and registry changes are routed to the registered connection's session.
 */
import type { Client } from 'aedes';
import type { Logger } from '../context';
import type { IotHubCore } from '../core/contracts';
import type { DeviceSession } from './device-session';
import { quote, type SessionTransport } from './device-session';
import type { DirectPublisher } from './direct-publisher';

/** What IoT Hub reports as `iothub-connection-auth-method` for a SAS-authenticated device. */
const sasAuthMethod =
  '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}';

export interface RegistryOptions {
  core: IotHubCore;
  log: Logger;
  publisher: DirectPublisher;
  /** A connection's session closed (before its device is marked disconnected). */
  sessionClosed(client: Client, session: DeviceSession): void;
}

export class DeviceSessionRegistry {
  private readonly sessions = new WeakMap<Client, DeviceSession>();
  /** The registered connection of each connected device. */
  private readonly live = new Map<string, { client: Client; session: DeviceSession }>();
  private readonly remotes = new WeakMap<Client, string>();
  /** `iothub-connection-auth-method` of each connection's telemetry (SAS unless set). */
  private readonly authMethods = new WeakMap<Client, string>();
  /** Connections this adapter dropped (already logged with the reason). */
  private readonly droppedByUs = new WeakSet<Client>();

  constructor(private readonly options: RegistryOptions) {}

  noteRemote(client: Client, remote: string): void {
    this.remotes.set(client, remote);
  }

  remoteOf(client: Client): string {
    return this.remotes.get(client) ?? 'unknown address';
  }

  sessionOf(client: Client): DeviceSession | undefined {
    return this.sessions.get(client);
  }

  authMethodOf(client: Client): string {
    return this.authMethods.get(client) ?? sasAuthMethod;
  }

  /** The client authenticated as `session`'s device (registered once aedes reports it). */
  authenticated(client: Client, session: DeviceSession, authMethod?: string): void {
    this.sessions.set(client, session);
    if (authMethod !== undefined) this.authMethods.set(client, authMethod);
  }

  /** The connection is going because of us; its errors are not news. */
  markDropped(client: Client): void {
    this.droppedByUs.add(client);
  }

  wasDroppedByUs(client: Client): boolean {
    return this.droppedByUs.has(client);
  }

  drop(client: Client, reason: string): void {
    this.droppedByUs.add(client);
    this.options.log.warn(
      `dropping device ${quote(client.id ?? '')} (${this.remoteOf(client)}): ${reason}`,
    );
    client.close();
  }

  /** The transport a session delivers through: this connection only. */
  transportFor(client: Client): SessionTransport {
    return {
      publish: (topic, payload, qos, packetId) =>
        this.options.publisher.publish(client, topic, payload, qos, packetId),
      close: (reason) => this.drop(client, reason),
    };
  }

  /** aedes registered the client (CONNACK sent): it becomes its device's connection. */
  connected(client: Client): void {
    const session = this.sessions.get(client);
    if (!session) return;
    const reason = session.stillAuthorized();
    if (reason !== undefined) {
      this.drop(client, reason);
      return;
    }
    const { core, log } = this.options;
    this.live.set(session.deviceId, { client, session });
    core.registry.setConnected(session.deviceId, true);
    core.registry.recordActivity(session.deviceId);
    log.info(`device ${quote(session.deviceId)} connected from ${this.remoteOf(client)}`);
    session.attach(this.transportFor(client));
  }

  /** The client is gone. The device stays connected when a newer connection took over. */
  disconnected(client: Client): void {
    const session = this.sessions.get(client);
    if (!session) return;
    session.close();
    this.options.sessionClosed(client, session);
    if (this.live.get(session.deviceId)?.client === client) {
      this.live.delete(session.deviceId);
      this.options.core.registry.setConnected(session.deviceId, false);
    }
    this.options.log.info(
      `device ${quote(session.deviceId)} disconnected (${this.remoteOf(client)})`,
    );
  }

  /** C2D messages are waiting for `deviceId`: its connection delivers what its window allows. */
  deliverTo(deviceId: string): void {
    this.live.get(deviceId)?.session.pump();
  }

  /** The registry changed `deviceId`: its connection goes when it no longer authenticates. */
  recheck(deviceId: string): void {
    const connection = this.live.get(deviceId);
    if (!connection) return;
    const reason = connection.session.stillAuthorized();
    if (reason !== undefined) this.drop(connection.client, reason);
  }
}
