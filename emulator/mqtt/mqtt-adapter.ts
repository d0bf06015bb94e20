/**
 * Devices over MQTT 3.1.1 (server.ts terminates TLS and hands over sockets): an aedes broker
 * whose hooks enforce IoT Hub's rules for devices. aedes does the protocol; this file only
 * translates between its hooks and the core:
 * - `authenticate`: clientId = device id, password = the device's SAS token (CONNACK 5 for an
 *   unknown device or a bad/expired token, 3 for a disabled device);
 * - `authorizePublish`: the device's own events topic (telemetry is appended to the D2C log
 *   *before* aedes sends the PUBACK, so a PUBACK means "durably stored") and its own `$iothub/`
 *   twin requests; anything else drops the connection, as IoT Hub does;
 * - `authorizeSubscribe`: its own devicebound topic and the `$iothub/` reply topics;
 * - `authorizeForward`: nothing published through the broker reaches a device — only what this
 *   adapter sends to one connection (C2D messages, twin replies, desired patches, method calls;
 *   twin and method traffic is handled by ./twin-methods.ts).
 */
import type { Duplex } from 'node:stream';
import { Aedes } from 'aedes';
import type { AuthenticateError, Client, ConnectPacket, PublishPacket, Subscription } from 'aedes';
import { hubHostCheck } from '../auth/hosts';
import { parseSasToken, verifyDeviceToken } from '../auth/sas';
import { authenticateCertificate, presentedChain } from '../auth/x509';
import type { EmulatorContext, ProtocolAdapter } from '../context';
import { apiVersionInUserName, isKnownApiVersion } from '../core/api-version';
import type { DeviceRecord, TelemetryInput } from '../core/contracts';
import { DeviceSession, describe, quote, type SessionTransport } from './device-session';
import { MqttFrameWatcher } from './frame-watcher';
import { decodePropertyBag, PropertyBagError } from './property-bag';
import { classifyPublish, classifySubscription, deviceboundTopicPrefix } from './topics';
import { TwinMethodHandler } from './twin-methods';

/** IoT Hub's limit for one device-to-cloud message (body and properties). */
export const maxMessageBytes = 256 * 1024;
/** Largest MQTT packet accepted: a maximal message plus room for the topic and its bag. */
export const maxPacketBytes = maxMessageBytes + 64 * 1024;
/** C2D messages in flight per connection (delivered, not yet PUBACKed). */
const c2dWindow = 8;
/** What IoT Hub reports as `iothub-connection-auth-method` for a SAS-authenticated device. */
const sasAuthMethod =
  '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}';

/** CONNACK return codes the SDK translates (5 → UnauthorizedError, 3 → ServiceUnavailableError). */
const connack = { identifierRejected: 2, serverUnavailable: 3, notAuthorized: 5 } as const;

function remoteAddressOf(socket: Duplex): string {
  const s = socket as Duplex & { remoteAddress?: unknown; remotePort?: unknown };
  return typeof s.remoteAddress === 'string'
    ? `${s.remoteAddress}:${String(s.remotePort)}`
    : 'unknown address';
}

/**
 * Why a CONNECT gets CONNACK 1 (unacceptable protocol version), or `undefined`: IoT Hub speaks
 * MQTT 3.1.1 (level 4) only, and refuses an `api-version` it does not know. A user name that
 * names no api-version is accepted, as IoT Hub accepts it; a malformed one is left to
 * authentication.
 */
function protocolRefusal(packet: ConnectPacket): string | undefined {
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

/**
 * Application properties IoT Hub adds to telemetry for MQTT features it does not keep: a RETAIN
 * publish carries `mqtt-retain: true`, and the Will message (aedes publishes `client.will` when a
 * connection ends without DISCONNECT) carries `iothub-MessageType: Will`.
 */
function publishMarkers(client: Client, packet: PublishPacket): Record<string, string> {
  const markers: Record<string, string> = {};
  if (packet.retain) markers['mqtt-retain'] = 'true';
  if (packet === (client as Client & { will?: unknown }).will)
    markers['iothub-MessageType'] = 'Will';
  return markers;
}

function asBuffer(payload: Buffer | string): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
}

export async function createMqttAdapter(ctx: EmulatorContext): Promise<ProtocolAdapter> {
  const { core, log } = ctx;
  const sessions = new WeakMap<Client, DeviceSession>();
  /** The registered connection of each connected device. */
  const live = new Map<string, { client: Client; session: DeviceSession }>();
  const remotes = new WeakMap<Client, string>();
  /** `iothub-connection-auth-method` of each connection's telemetry (SAS unless set). */
  const authMethods = new WeakMap<Client, string>();
  /** Connections this adapter dropped (already logged with the reason). */
  const droppedByUs = new WeakSet<Client>();
  const pending = new Set<Promise<void>>();
  /**
   * Set for the duration of one `client.publish` from this adapter: aedes calls
   * `authorizeForward` synchronously inside it (every session is clean, see `preConnect`), which
   * is where the packet receives the identifier the PUBACK will carry.
   */
  let forwarding: { client: Client; packetId: number | undefined } | undefined;

  const namesThisHub = hubHostCheck(ctx.hostName, ctx.identity.hubName);

  /**
   * Runs a listener or hook body so that a bug in it drops at most one connection: an exception
   * escaping into aedes or a socket's 'data' event would take the whole process down.
   */
  function guarded<A extends unknown[]>(
    what: string,
    body: (...args: A) => void,
  ): (...args: A) => void {
    return (...args) => {
      try {
        body(...args);
      } catch (error) {
        log.error(`${what} failed: ${describe(error)}`);
      }
    };
  }

  function track(work: Promise<void>): void {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  }

  function remoteOf(client: Client): string {
    return remotes.get(client) ?? 'unknown address';
  }

  function drop(client: Client, reason: string): void {
    droppedByUs.add(client);
    log.warn(`dropping device ${quote(client.id ?? '')} (${remoteOf(client)}): ${reason}`);
    client.close();
  }

  function transportFor(client: Client): SessionTransport {
    return {
      publish(topic, payload, qos, packetId) {
        forwarding = { client, packetId };
        try {
          const packet: PublishPacket = {
            cmd: 'publish',
            topic,
            payload,
            qos,
            retain: false,
            dup: false,
          };
          client.publish(packet, (error) => {
            // A failed write means the connection is going; its close abandons what was in flight.
            if (error && !client.closed)
              log.warn(`write to ${quote(client.id)} failed: ${error.message}`);
          });
        } finally {
          if (forwarding !== undefined) {
            log.error(`a message for ${quote(client.id)} was not handed over synchronously`);
          }
          forwarding = undefined;
        }
      },
      close(reason) {
        drop(client, reason);
      },
    };
  }

  const twinsAndMethods = new TwinMethodHandler({
    core,
    log,
    publish: (client, topic, payload) => transportFor(client).publish(topic, payload, 0, undefined),
    track,
  });

  type AuthenticateDone = (error: AuthenticateError | null, success: boolean | null) => void;

  function authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: AuthenticateDone,
  ): void {
    try {
      checkCredentials(client, username, password, done);
    } catch (error) {
      log.error(`authenticating ${quote(client.id)} failed: ${describe(error)}`);
      done(
        Object.assign(new Error('server error'), { returnCode: connack.serverUnavailable }),
        false,
      );
    }
  }

  function checkCredentials(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: AuthenticateDone,
  ): void {
    const deviceId = client.id;
    const refuse = (returnCode: 2 | 3 | 5, reason: string): void => {
      droppedByUs.add(client);
      log.warn(
        `refused device ${quote(deviceId)} from ${remoteOf(client)} (CONNACK ${returnCode}): ${reason}`,
      );
      done(Object.assign(new Error(reason), { returnCode }), false);
    };
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
      return acceptCertificate(client, device, refuse, done);
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
    sessions.set(
      client,
      new DeviceSession({
        core,
        log,
        deviceId,
        remoteAddress: remoteOf(client),
        token,
        namesThisHub,
        expiresAt,
        c2dWindow,
        track,
      }),
    );
    done(null, true);
  }

  /**
   * An X.509 device: the certificate from the TLS handshake authenticates it (no password, as
   * the SDK sends none); re-checked against the registry whenever the device changes.
   */
  function acceptCertificate(
    client: Client,
    device: DeviceRecord,
    refuse: (returnCode: 3 | 5, reason: string) => void,
    done: AuthenticateDone,
  ): void {
    const chain = presentedChain(client.conn);
    const check = (current: DeviceRecord): string =>
      authenticateCertificate({
        device: current,
        chain,
        trustedCas: ctx.trustedDeviceCas ?? [],
        nowMs: core.clock.now(),
      });
    try {
      authMethods.set(client, check(device));
    } catch (error) {
      return refuse(connack.notAuthorized, describe(error));
    }
    if (device.status === 'disabled')
      return refuse(connack.serverUnavailable, 'device is disabled');
    const session = new DeviceSession({
      core,
      log,
      deviceId: device.deviceId,
      remoteAddress: remoteOf(client),
      recheck: (current) => void check(current),
      expiresAt: Date.parse(chain?.[0]?.validTo ?? ''),
      c2dWindow,
      track,
    });
    sessions.set(client, session);
    done(null, true);
  }

  function appendTelemetry(
    client: Client,
    session: DeviceSession,
    packet: PublishPacket,
    bag: string,
    callback: (error?: Error | null) => void,
    markers: Record<string, string> = {},
  ): void {
    const refuse = (reason: string): void => {
      drop(client, `telemetry refused: ${reason}`);
      callback(new Error(reason));
    };
    const body = asBuffer(packet.payload);
    if (body.length + Buffer.byteLength(bag) > maxMessageBytes) {
      return refuse(`message exceeds ${maxMessageBytes} bytes`);
    }
    let decoded;
    try {
      decoded = decodePropertyBag(bag);
    } catch (error) {
      return refuse(error instanceof PropertyBagError ? error.message : 'unreadable property bag');
    }
    const device = core.registry.get(session.deviceId);
    if (!device || device.status === 'disabled') return refuse('device is not enabled');
    const input: TelemetryInput = {
      deviceId: session.deviceId,
      body,
      properties: Object.assign(decoded.properties, markers),
      ...decoded.system,
      generationId: device.generationId,
      authMethod: authMethods.get(client) ?? sasAuthMethod,
    };
    track(
      core.d2c.append(input).then(
        () => {
          core.registry.recordActivity(session.deviceId);
          callback(null);
        },
        (error: unknown) => {
          drop(client, `telemetry not stored: ${describe(error)}`);
          callback(error instanceof Error ? error : new Error(describe(error)));
        },
      ),
    );
  }

  function authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void {
    try {
      routePublish(client, packet, callback);
    } catch (error) {
      log.error(`publish handling failed: ${describe(error)}`);
      callback(error instanceof Error ? error : new Error(describe(error)));
    }
  }

  function routePublish(
    client: Client | null,
    packet: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void {
    const session = client ? sessions.get(client) : undefined;
    if (!client || !session) {
      callback(new Error('only authenticated devices publish'));
      return;
    }
    const markers = publishMarkers(client, packet);
    // IoT Hub keeps no retained messages (it marks them, see publishMarkers); aedes must not.
    packet.retain = false;
    if (packet.qos === 2) {
      drop(client, 'QoS 2 is not supported');
      callback(new Error('QoS 2 is not supported'));
      return;
    }
    const target = classifyPublish(session.deviceId, packet.topic);
    switch (target.kind) {
      case 'telemetry':
        appendTelemetry(client, session, packet, target.bag, callback, markers);
        return;
      case 'twin-get':
      case 'twin-patch-reported':
      case 'method-response':
        twinsAndMethods.handlePublish(client, session.deviceId, target, asBuffer(packet.payload));
        callback(null);
        return;
      case 'refused':
        drop(client, `publish to ${quote(packet.topic)} refused: ${target.reason}`);
        callback(new Error(target.reason));
        return;
    }
  }

  function authorizeSubscribe(
    client: Client,
    subscription: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void,
  ): void {
    const session = sessions.get(client);
    const kind = session ? classifySubscription(session.deviceId, subscription.topic) : 'refused';
    if (kind === 'refused') {
      log.warn(
        `device ${quote(client.id)} (${remoteOf(client)}): subscription to ${quote(subscription.topic)} refused`,
      );
      callback(null, null); // SUBACK 0x80
      return;
    }
    // IoT Hub grants at most QoS 1.
    callback(null, { ...subscription, qos: subscription.qos > 1 ? 1 : subscription.qos });
  }

  const broker = await Aedes.createBroker({
    // Every session is clean for aedes: IoT Hub's C2D queue lives in the core, and aedes' own
    // offline queue would deliver duplicates. The SDK re-subscribes on every connect.
    preConnect(client, packet, callback) {
      packet.clean = true;
      const refusal = protocolRefusal(packet);
      if (refusal !== undefined) {
        droppedByUs.add(client);
        log.warn(
          `refused ${quote(packet.clientId)} from ${remoteOf(client)} (CONNACK 1): ${refusal}`,
        );
        // The `authenticate` hook cannot answer CONNACK 1; aedes itself answers it (and closes)
        // for a protocol level it does not know, so the packet is presented as such a level.
        (packet as { protocolVersion: number }).protocolVersion = 0;
      }
      callback(null, true);
    },
    authenticate,
    authorizePublish,
    authorizeSubscribe,
    authorizeForward(client, packet) {
      if (!forwarding || forwarding.client !== client) return null;
      if (forwarding.packetId !== undefined) packet.messageId = forwarding.packetId;
      forwarding = undefined;
      return packet;
    },
  });

  broker.on(
    'client',
    guarded('registering a connection', (client: Client) => {
      const session = sessions.get(client);
      if (!session) return;
      const reason = session.stillAuthorized();
      if (reason !== undefined) {
        drop(client, reason);
        return;
      }
      live.set(session.deviceId, { client, session });
      core.registry.setConnected(session.deviceId, true);
      core.registry.recordActivity(session.deviceId);
      log.info(`device ${quote(session.deviceId)} connected from ${remoteOf(client)}`);
      session.attach(transportFor(client));
    }),
  );

  broker.on(
    'clientDisconnect',
    guarded('unregistering a connection', (client: Client) => {
      const session = sessions.get(client);
      if (!session) return;
      session.close();
      twinsAndMethods.onDisconnect(client, session.deviceId);
      if (live.get(session.deviceId)?.client === client) {
        live.delete(session.deviceId);
        core.registry.setConnected(session.deviceId, false);
      }
      log.info(`device ${quote(session.deviceId)} disconnected (${remoteOf(client)})`);
    }),
  );

  broker.on(
    'subscribe',
    guarded('a subscription', (subscriptions: Subscription[], client: Client) => {
      const session = sessions.get(client);
      const c2dFilter = session ? `${deviceboundTopicPrefix(session.deviceId)}#` : undefined;
      const granted = subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic);
      if (granted.includes(c2dFilter ?? '')) session?.subscribeC2D();
      if (session) twinsAndMethods.onSubscribe(client, session.deviceId, granted);
    }),
  );

  broker.on(
    'unsubscribe',
    guarded('an unsubscription', (topics: string[], client: Client) => {
      const session = sessions.get(client);
      if (session && topics.includes(`${deviceboundTopicPrefix(session.deviceId)}#`)) {
        session.unsubscribeC2D();
      }
      if (session) twinsAndMethods.onUnsubscribe(client, session.deviceId, topics);
    }),
  );

  broker.on('clientError', (client, error) => {
    if (!droppedByUs.has(client)) {
      log.info(`device ${quote(client.id ?? '')} (${remoteOf(client)}): ${error.message}`);
    }
  });

  broker.on('connectionError', (client, error) => {
    if (!droppedByUs.has(client)) {
      log.info(`dropped connection from ${remoteOf(client)}: ${error.message}`);
    }
  });

  const stopC2D = core.c2d.onAvailable(
    guarded('C2D delivery', (deviceId: string) => live.get(deviceId)?.session.pump()),
  );
  const stopRegistry = core.registry.onDeviceChanged(
    guarded('a registry change', (deviceId: string) => {
      const connection = live.get(deviceId);
      if (!connection) return;
      const reason = connection.session.stillAuthorized();
      if (reason !== undefined) drop(connection.client, reason);
    }),
  );

  return {
    handle(socket) {
      const remote = remoteAddressOf(socket);
      // PUBACKs and C2D publishes are tiny writes a device waits for: Nagle's algorithm would
      // hold each one back until the previous segment is acknowledged.
      const tcp = socket as Duplex & { setNoDelay?: (noDelay: boolean) => unknown };
      if (typeof tcp.setNoDelay === 'function') tcp.setNoDelay(true);
      const client = broker.handle(socket);
      remotes.set(client, remote);
      const watcher = new MqttFrameWatcher(maxPacketBytes, {
        onPuback: guarded('a PUBACK', (packetId: number) =>
          sessions.get(client)?.onPuback(packetId),
        ),
        onViolation: (reason) => {
          droppedByUs.add(client);
          log.warn(`dropped connection from ${remote}: ${reason}`);
          socket.destroy();
        },
      });
      // With aedes' 'readable' listener in control, 'data' only reports what aedes reads.
      socket.on('data', (chunk: Buffer) => watcher.push(chunk));
    },
    async close() {
      stopC2D();
      stopRegistry();
      twinsAndMethods.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await Promise.allSettled([...pending]);
    },
  };
}
