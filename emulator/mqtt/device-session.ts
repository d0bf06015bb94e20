/**
 * One authenticated device connection: its cloud-to-device delivery (lock → publish QoS 1 →
 * PUBACK completes; a dropped connection abandons what was in flight), its token's lifetime, and
 * whether it may stay connected after a registry change. Knows nothing of aedes: the adapter
 * supplies the transport.
 */
import type { HubHostCheck } from '../auth/hosts';
import { verifyDeviceToken } from '../auth/sas';
import type { Logger } from '../context';
import type { C2DMessage, ClockTimer, DeviceRecord, IotHubCore } from '../core/contracts';
import { encodeC2DPropertyBag } from './property-bag';
import { deviceboundTopicPrefix } from './topics';

export interface SessionTransport {
  /** Publishes to this connection only; `packetId` is the MQTT packet identifier for QoS 1. */
  publish(topic: string, payload: Buffer, qos: 0 | 1, packetId: number | undefined): void;
  /** Drops the connection. */
  close(reason: string): void;
}

export interface SessionOptions {
  core: IotHubCore;
  log: Logger;
  deviceId: string;
  remoteAddress: string;
  /** The SAS token the device connected with; kept to re-check it after registry changes. */
  token?: string;
  /** Which hosts a token's resource may name (with `token`). */
  namesThisHub?: HubHostCheck;
  /**
   * Re-checks a credential other than a token (an X.509 certificate) after a registry change;
   * throws when it no longer authenticates the device. Replaces the token check.
   */
  recheck?: (device: DeviceRecord) => void;
  /** Token (or certificate) expiry, ms since the epoch. */
  expiresAt: number;
  /** Most C2D messages delivered but not yet acknowledged at once. */
  c2dWindow: number;
  /** Keeps shutdown waiting for settlements still being written. */
  track(work: Promise<void>): void;
}

/** MQTT 3.1.1 encodes a topic's length in two bytes. */
const maxTopicBytes = 65_535;

/** setTimeout's ceiling (~24.8 days); longer waits are re-armed. */
const maxTimerMs = 2 ** 31 - 1;

export class DeviceSession {
  readonly deviceId: string;
  readonly remoteAddress: string;
  private transport: SessionTransport | undefined;
  private c2dSubscribed = false;
  /** MQTT packet id → C2D lock token, for messages published and not yet PUBACKed. */
  private readonly inflight = new Map<number, string>();
  private nextPacketId = 1;
  private closed = false;
  private expiryTimer: ClockTimer | undefined;

  constructor(private readonly options: SessionOptions) {
    this.deviceId = options.deviceId;
    this.remoteAddress = options.remoteAddress;
  }

  /** The connection is registered with the broker: deliveries may start. */
  attach(transport: SessionTransport): void {
    this.transport = transport;
    this.armExpiry();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  subscribeC2D(): void {
    this.c2dSubscribed = true;
    this.pump();
  }

  unsubscribeC2D(): void {
    this.c2dSubscribed = false;
  }

  /** Delivers queued messages while the window has room. */
  pump(): void {
    const { core, c2dWindow } = this.options;
    while (this.transport && !this.closed && this.c2dSubscribed && this.inflight.size < c2dWindow) {
      const message = core.c2d.lockNext(this.deviceId);
      if (!message) return;
      this.deliver(this.transport, message);
    }
  }

  /**
   * Publishes one message, or dead-letters it when MQTT cannot carry it: what the service sent
   * must never cost the device its connection, nor hold up the messages queued behind it.
   */
  private deliver(transport: SessionTransport, message: C2DMessage): void {
    const topic = `${deviceboundTopicPrefix(this.deviceId)}${encodeC2DPropertyBag(message)}`;
    const topicBytes = Buffer.byteLength(topic, 'utf8');
    if (topicBytes > maxTopicBytes) {
      this.deadLetter(
        message,
        `Message cannot be delivered over MQTT: its properties need a ${topicBytes}-byte topic, over the ${maxTopicBytes}-byte limit`,
      );
      return;
    }
    const packetId = this.allocatePacketId();
    this.inflight.set(packetId, message.lockToken);
    try {
      transport.publish(topic, message.body, 1, packetId);
    } catch (error) {
      this.inflight.delete(packetId);
      this.deadLetter(message, `Message cannot be delivered over MQTT: ${describe(error)}`);
    }
  }

  private deadLetter(message: C2DMessage, description: string): void {
    const { core, log } = this.options;
    log.warn(`device ${quote(this.deviceId)}: C2D message dead-lettered: ${description}`);
    this.options.track(
      core.c2d.deadLetter(this.deviceId, message.lockToken, description).catch((error: unknown) => {
        log.warn(
          `device ${quote(this.deviceId)}: dead-lettering a C2D message failed: ${describe(error)}`,
        );
      }),
    );
  }

  /** The device acknowledged a QoS 1 publish: for C2D that completes the message. */
  onPuback(packetId: number): void {
    const lockToken = this.inflight.get(packetId);
    if (lockToken === undefined) return;
    this.inflight.delete(packetId);
    this.options.track(
      this.options.core.c2d.complete(this.deviceId, lockToken).catch((error: unknown) => {
        this.options.log.warn(
          `device ${quote(this.deviceId)}: completing a C2D message failed: ${describe(error)}`,
        );
      }),
    );
    this.pump();
  }

  /**
   * After a registry change: may this connection stay? A disabled or deleted device, or keys that
   * no longer match the token it connected with, end it (as IoT Hub does).
   */
  stillAuthorized(): string | undefined {
    const device = this.options.core.registry.get(this.deviceId);
    if (!device) return 'device was deleted';
    if (device.status === 'disabled') return 'device was disabled';
    const { token, recheck } = this.options;
    try {
      if (recheck) recheck(device);
      else {
        const namesThisHub = this.options.namesThisHub ?? (() => false);
        verifyDeviceToken(token ?? '', device, this.options.core.clock.now(), namesThisHub);
      }
    } catch {
      return recheck ? 'device authentication changed' : 'device keys changed';
    }
    return undefined;
  }

  /** The connection is gone: abandon what the device never acknowledged. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer) this.options.core.clock.clearTimeout(this.expiryTimer);
    const { core, log } = this.options;
    for (const lockToken of this.inflight.values()) {
      this.options.track(
        core.c2d.abandon(this.deviceId, lockToken).catch((error: unknown) => {
          log.warn(
            `device ${quote(this.deviceId)}: abandoning a C2D message failed: ${describe(error)}`,
          );
        }),
      );
    }
    this.inflight.clear();
  }

  private allocatePacketId(): number {
    // Packet ids are 1..65535 and must not collide with one still in flight.
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id >= 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** IoT Hub ends a connection when its token expires; the SDK renews before that. */
  private armExpiry(): void {
    const { clock } = this.options.core;
    const wait = this.options.expiresAt - clock.now();
    if (wait <= 0) {
      this.transport?.close('token expired');
      return;
    }
    this.expiryTimer = clock.setTimeout(() => this.armExpiry(), Math.min(wait, maxTimerMs));
  }
}

/** Device ids come off the wire: bounded and quoted before they reach a log line. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 128 ? `${text.slice(0, 128)}…` : text);
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
