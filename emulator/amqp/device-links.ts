/**
 * Device links on the AMQPS listener (azure-iot-device-amqp's `Amqp` transport), one instance
 * per connection: `/devices/{id}/messages/events` (telemetry), `/devices/{id}/messages/devicebound`
 * (C2D), `/devices/{id}/twin` and `/devices/{id}/methods/devicebound` (link pairs). A link is
 * attached only with an unexpired CBS grant for that very device (a device token with
 * `sr=<host>/devices/<id>`) or, for an X.509 device, a client certificate that authenticates it
 * (./device-x509.ts); a device attaching another device's link is refused with
 * `amqp:unauthorized-access`. Module links (`/devices/{id}/modules/…`) are `amqp:not-implemented`.
 */
import type { EventContext, Receiver, Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import type { CbsEndpoint } from './cbs';
import { serveC2D, type C2DLink } from './device-c2d';
import type { DeviceCertificates } from './device-x509';
import { receiveTelemetry } from './device-telemetry';
import { receiveMethodResponse, serveMethodCalls, TwinChannel } from './device-twin-methods';
import { messageFields } from './rhea-server';

type DeviceLinkKind = 'events' | 'devicebound' | 'twin' | 'methods' | 'modules' | 'unknown';

export interface DeviceAddress {
  address: string;
  deviceId: string;
  kind: DeviceLinkKind;
}

const kinds: Readonly<Record<string, DeviceLinkKind>> = {
  'messages/events': 'events',
  'messages/devicebound': 'devicebound',
  twin: 'twin',
  'methods/devicebound': 'methods',
};

/** The device and link kind an address names, or undefined when it is no `/devices/…` address. */
export function parseDeviceAddress(address: string | undefined): DeviceAddress | undefined {
  const match = /^\/devices\/([^/]+)\/(.+)$/i.exec(address ?? '');
  const [, encodedId, rest] = match ?? [];
  if (encodedId === undefined || rest === undefined) return undefined;
  let deviceId: string;
  try {
    deviceId = decodeURIComponent(encodedId);
  } catch {
    return undefined;
  }
  const path = rest.toLowerCase();
  const kind = path.startsWith('modules/') ? 'modules' : (kinds[path] ?? 'unknown');
  return { address: address ?? '', deviceId, kind };
}

export interface DeviceLinks {
  /** True when the link names a device address (it is then served or refused here). */
  onReceiverOpen(receiver: Receiver, address: string | undefined): boolean;
  onSenderOpen(sender: Sender, address: string | undefined): boolean;
  /** The connection is gone: abandon in-flight C2D, stop method and desired listeners. */
  close(): void;
}

export interface DeviceLinkOptions {
  ctx: EmulatorContext;
  cbs: CbsEndpoint;
  /** The connection's client certificate, for X.509 devices (which attach without CBS). */
  certificates?: DeviceCertificates;
  refuse: (link: Sender | Receiver, condition: string, description: string) => void;
}

export function createDeviceLinks(options: DeviceLinkOptions): DeviceLinks {
  return new DeviceLinkSet(options);
}

/** The device links of one AMQP connection, and what they hold in the core. */
class DeviceLinkSet implements DeviceLinks {
  private readonly c2dLinks = new Set<C2DLink>();
  private readonly methodListeners = new Set<() => void>();
  private readonly twins = new Map<string, TwinChannel>();
  private readonly connected = new Set<string>();
  /** Every open device link, by device, so a disable, re-key or delete can close them. */
  private readonly linksOf = new Map<string, Set<Sender | Receiver>>();
  private readonly stopWatching: () => void;

  constructor(private readonly options: DeviceLinkOptions) {
    this.stopWatching = options.ctx.core.registry.onDeviceChanged((deviceId) => {
      const links = this.linksOf.get(deviceId);
      if (!links) return;
      this.linksOf.delete(deviceId);
      for (const link of links) {
        options.refuse(
          link,
          'amqp:unauthorized-access',
          'the device was disabled, re-keyed or deleted',
        );
      }
    });
  }

  onReceiverOpen(receiver: Receiver, address: string | undefined): boolean {
    if (!parseDeviceAddress(address)) return false;
    const admitted = this.admit(receiver, address);
    if (!admitted) return true;
    const { deviceId, kind } = admitted;
    if (kind === 'devicebound') {
      this.options.refuse(
        receiver,
        'amqp:not-allowed',
        'a device receives on its devicebound address',
      );
      return true;
    }
    receiver.set_target({ address: admitted.address });
    const { ctx } = this.options;
    receiver.on('message', (context: EventContext) => {
      const { message, delivery } = context;
      if (!message || !delivery) return;
      const fields = messageFields(message);
      if (kind === 'events') {
        const authMethod = this.options.certificates?.authMethodOf(deviceId);
        void receiveTelemetry(ctx, deviceId, fields, delivery, authMethod);
      } else if (kind === 'twin') this.twinOf(deviceId).handle(fields, delivery);
      else receiveMethodResponse(ctx, deviceId, fields, delivery);
    });
    return true;
  }

  onSenderOpen(sender: Sender, address: string | undefined): boolean {
    if (!parseDeviceAddress(address)) return false;
    const admitted = this.admit(sender, address);
    if (!admitted) return true;
    const { deviceId, kind } = admitted;
    if (kind === 'events') {
      this.options.refuse(sender, 'amqp:not-allowed', 'a device sends on its events address');
      return true;
    }
    sender.set_source({ address: admitted.address });
    const { ctx } = this.options;
    if (kind === 'devicebound') {
      const link = serveC2D(ctx, deviceId, sender);
      this.c2dLinks.add(link);
      sender.on('sender_close', () => this.c2dLinks.delete(link));
    } else if (kind === 'twin') {
      this.twinOf(deviceId).setResponder(sender);
    } else {
      const stop = serveMethodCalls(ctx, deviceId, sender);
      this.methodListeners.add(stop);
      sender.on('sender_close', () => {
        stop();
        this.methodListeners.delete(stop);
      });
    }
    return true;
  }

  close(): void {
    this.stopWatching();
    this.linksOf.clear();
    for (const link of this.c2dLinks) link.dispose();
    this.c2dLinks.clear();
    for (const stop of this.methodListeners) stop();
    this.methodListeners.clear();
    for (const channel of this.twins.values()) channel.close();
    this.twins.clear();
    for (const deviceId of this.connected)
      this.options.ctx.core.registry.setConnected(deviceId, false);
    this.connected.clear();
  }

  /** The device this link may be attached for, or undefined once refused. */
  private admit(link: Sender | Receiver, address: string | undefined): DeviceAddress | undefined {
    const { ctx, cbs, refuse } = this.options;
    const parsed = parseDeviceAddress(address);
    if (!parsed) return undefined;
    // Unsupported addresses say so whatever the token: never a misleading 401.
    if (parsed.kind === 'modules' || parsed.kind === 'unknown') {
      refuse(
        link,
        'amqp:not-implemented',
        `${JSON.stringify(address)} is not served by the local hub`,
      );
      return undefined;
    }
    const etag = ctx.core.registry.get(parsed.deviceId)?.etag;
    const granted = cbs.findGrant(
      ctx.core.clock.now(),
      (g) => g.deviceId === parsed.deviceId && etag !== undefined && g.deviceEtag === etag,
    );
    const { certificates } = this.options;
    const refusal = granted
      ? undefined
      : certificates
        ? certificates.refusal(parsed.deviceId)
        : `no valid token for device ${JSON.stringify(parsed.deviceId)}`;
    if (refusal !== undefined) {
      refuse(link, 'amqp:unauthorized-access', refusal);
      return undefined;
    }
    this.track(parsed.deviceId, link);
    if (!this.connected.has(parsed.deviceId)) {
      this.connected.add(parsed.deviceId);
      ctx.core.registry.setConnected(parsed.deviceId, true);
    }
    return parsed;
  }

  private track(deviceId: string, link: Sender | Receiver): void {
    let links = this.linksOf.get(deviceId);
    if (!links) {
      links = new Set();
      this.linksOf.set(deviceId, links);
    }
    links.add(link);
    const untrack = (): void => void links.delete(link);
    link.on(link.is_sender() ? 'sender_close' : 'receiver_close', untrack);
  }

  private twinOf(deviceId: string): TwinChannel {
    let channel = this.twins.get(deviceId);
    if (!channel) {
      channel = new TwinChannel(this.options.ctx, deviceId);
      this.twins.set(deviceId, channel);
    }
    return channel;
  }
}
