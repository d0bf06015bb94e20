/**
 * PUBLISH from a device (aedes' `authorizePublish`): its own events topic is telemetry, appended
 * to the D2C log *before* aedes sends the PUBACK, so a PUBACK means "durably stored"; its own
 * `$iothub/` twin and method requests go to ./twin-methods.ts; anything else (another device's
 * topic, QoS 2, a message over the size limit, an unreadable property bag) drops the connection,
 * as IoT Hub does.
 */
import type { Client, PublishPacket } from 'aedes';
import type { Logger } from '../context';
import type { IotHubCore, TelemetryInput } from '../core/contracts';
import { describe, quote, type DeviceSession } from './device-session';
import { decodePropertyBag, PropertyBagError } from './property-bag';
import type { DeviceSessionRegistry } from './session-registry';
import { classifyPublish } from './topics';
import type { TwinMethodHandler } from './twin-methods';

type Callback = (error?: Error | null) => void;

export interface PublishOptions {
  core: IotHubCore;
  log: Logger;
  registry: DeviceSessionRegistry;
  twinsAndMethods: TwinMethodHandler;
  /** IoT Hub's limit for one device-to-cloud message (body and properties). */
  maxMessageBytes: number;
  track: (work: Promise<void>) => void;
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

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(describe(error));
}

export class PublishHandler {
  constructor(private readonly options: PublishOptions) {}

  /** aedes' `authorizePublish`; a bug in the handling refuses the publish rather than escaping. */
  readonly authorizePublish = (
    client: Client | null,
    packet: PublishPacket,
    callback: Callback,
  ): void => {
    try {
      this.route(client, packet, callback);
    } catch (error) {
      this.options.log.error(`publish handling failed: ${describe(error)}`);
      callback(asError(error));
    }
  };

  private route(client: Client | null, packet: PublishPacket, callback: Callback): void {
    const { registry, twinsAndMethods } = this.options;
    const session = client ? registry.sessionOf(client) : undefined;
    if (!client || !session) {
      callback(new Error('only authenticated devices publish'));
      return;
    }
    const markers = publishMarkers(client, packet);
    // IoT Hub keeps no retained messages (it marks them, see publishMarkers); aedes must not.
    packet.retain = false;
    if (packet.qos === 2) {
      registry.drop(client, 'QoS 2 is not supported');
      callback(new Error('QoS 2 is not supported'));
      return;
    }
    const target = classifyPublish(session.deviceId, packet.topic);
    switch (target.kind) {
      case 'telemetry':
        this.appendTelemetry(client, session, packet, target.bag, callback, markers);
        return;
      case 'twin-get':
      case 'twin-patch-reported':
      case 'method-response':
        twinsAndMethods.handlePublish(client, session.deviceId, target, asBuffer(packet.payload));
        callback(null);
        return;
      case 'refused':
        registry.drop(client, `publish to ${quote(packet.topic)} refused: ${target.reason}`);
        callback(new Error(target.reason));
        return;
    }
  }

  private appendTelemetry(
    client: Client,
    session: DeviceSession,
    packet: PublishPacket,
    bag: string,
    callback: Callback,
    markers: Record<string, string>,
  ): void {
    const { core, registry, maxMessageBytes } = this.options;
    const refuse = (reason: string): void => {
      registry.drop(client, `telemetry refused: ${reason}`);
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
    const generationId = core.registry.enabledGenerationId(session.deviceId);
    if (generationId === undefined) return refuse('device is not enabled');
    const input: TelemetryInput = {
      deviceId: session.deviceId,
      body,
      properties: Object.assign(decoded.properties, markers),
      ...decoded.system,
      generationId,
      authMethod: registry.authMethodOf(client),
    };
    this.store(client, session, input, callback);
  }

  /** Appends to the D2C log; the PUBACK (the callback) follows only once it is stored. */
  private store(
    client: Client,
    session: DeviceSession,
    input: TelemetryInput,
    callback: Callback,
  ): void {
    const { core, registry, track } = this.options;
    track(
      core.d2c.append(input).then(
        () => {
          core.registry.recordActivity(session.deviceId);
          callback(null);
        },
        (error: unknown) => {
          registry.drop(client, `telemetry not stored: ${describe(error)}`);
          callback(asError(error));
        },
      ),
    );
  }
}
