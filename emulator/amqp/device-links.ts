/**
 * Device links on the AMQPS listener (azure-iot-device-amqp's `Amqp` transport), one instance
 * per connection: `/devices/{id}/messages/events` (telemetry), `/devices/{id}/messages/devicebound`
 * (C2D), `/devices/{id}/twin` and `/devices/{id}/methods/devicebound` (link pairs). A link is
 * attached only with an unexpired CBS grant for that very device (a device token with
 * `sr=<host>/devices/<id>`); a device attaching another device's link is refused with
 * `amqp:unauthorized-access`. Module links (`/devices/{id}/modules/…`) are `amqp:not-implemented`.
 */
import type { EventContext, Receiver, Sender } from 'rhea';
import type { EmulatorContext } from '../context';
import type { CbsEndpoint } from './cbs';
import { serveC2D, type C2DLink } from './device-c2d';
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
  refuse: (link: Sender | Receiver, condition: string, description: string) => void;
}

export function createDeviceLinks({ ctx, cbs, refuse }: DeviceLinkOptions): DeviceLinks {
  const c2dLinks = new Set<C2DLink>();
  const methodListeners = new Set<() => void>();
  const twins = new Map<string, TwinChannel>();
  const connected = new Set<string>();
  /** Every open device link, by device, so a disable, re-key or delete can close them. */
  const linksOf = new Map<string, Set<Sender | Receiver>>();

  const track = (deviceId: string, link: Sender | Receiver): void => {
    let links = linksOf.get(deviceId);
    if (!links) {
      links = new Set();
      linksOf.set(deviceId, links);
    }
    links.add(link);
    const untrack = (): void => void links.delete(link);
    link.on(link.is_sender() ? 'sender_close' : 'receiver_close', untrack);
  };

  const stopWatching = ctx.core.registry.onDeviceChanged((deviceId) => {
    const links = linksOf.get(deviceId);
    if (!links) return;
    linksOf.delete(deviceId);
    for (const link of links) {
      refuse(link, 'amqp:unauthorized-access', 'the device was disabled, re-keyed or deleted');
    }
  });

  /** The device this link may be attached for, or undefined once refused. */
  const admit = (
    link: Sender | Receiver,
    address: string | undefined,
  ): DeviceAddress | undefined => {
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
    if (!granted) {
      refuse(
        link,
        'amqp:unauthorized-access',
        `no valid token for device ${JSON.stringify(parsed.deviceId)}`,
      );
      return undefined;
    }
    track(parsed.deviceId, link);
    if (!connected.has(parsed.deviceId)) {
      connected.add(parsed.deviceId);
      ctx.core.registry.setConnected(parsed.deviceId, true);
    }
    return parsed;
  };

  const twinOf = (deviceId: string): TwinChannel => {
    let channel = twins.get(deviceId);
    if (!channel) {
      channel = new TwinChannel(ctx, deviceId);
      twins.set(deviceId, channel);
    }
    return channel;
  };

  const onReceiverOpen = (receiver: Receiver, address: string | undefined): boolean => {
    if (!parseDeviceAddress(address)) return false;
    const admitted = admit(receiver, address);
    if (!admitted) return true;
    const { deviceId, kind } = admitted;
    if (kind === 'devicebound') {
      refuse(receiver, 'amqp:not-allowed', 'a device receives on its devicebound address');
      return true;
    }
    receiver.set_target({ address: admitted.address });
    receiver.on('message', (context: EventContext) => {
      const { message, delivery } = context;
      if (!message || !delivery) return;
      const fields = messageFields(message);
      if (kind === 'events') void receiveTelemetry(ctx, deviceId, fields, delivery);
      else if (kind === 'twin') twinOf(deviceId).handle(fields, delivery);
      else receiveMethodResponse(ctx, deviceId, fields, delivery);
    });
    return true;
  };

  const onSenderOpen = (sender: Sender, address: string | undefined): boolean => {
    if (!parseDeviceAddress(address)) return false;
    const admitted = admit(sender, address);
    if (!admitted) return true;
    const { deviceId, kind } = admitted;
    if (kind === 'events') {
      refuse(sender, 'amqp:not-allowed', 'a device sends on its events address');
      return true;
    }
    sender.set_source({ address: admitted.address });
    if (kind === 'devicebound') {
      const link = serveC2D(ctx, deviceId, sender);
      c2dLinks.add(link);
      sender.on('sender_close', () => c2dLinks.delete(link));
    } else if (kind === 'twin') {
      twinOf(deviceId).setResponder(sender);
    } else {
      const stop = serveMethodCalls(ctx, deviceId, sender);
      methodListeners.add(stop);
      sender.on('sender_close', () => {
        stop();
        methodListeners.delete(stop);
      });
    }
    return true;
  };

  const close = (): void => {
    stopWatching();
    linksOf.clear();
    for (const link of c2dLinks) link.dispose();
    c2dLinks.clear();
    for (const stop of methodListeners) stop();
    methodListeners.clear();
    for (const channel of twins.values()) channel.close();
    twins.clear();
    for (const deviceId of connected) ctx.core.registry.setConnected(deviceId, false);
    connected.clear();
  };

  return { onReceiverOpen, onSenderOpen, close };
}
