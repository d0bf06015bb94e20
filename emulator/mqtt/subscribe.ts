/**
 * SUBSCRIBE and UNSUBSCRIBE from a device: it may subscribe its own devicebound topic (C2D) and
 * the `$iothub/` reply and notification topics, at most at QoS 1; anything else gets SUBACK 0x80.
 * Granted subscriptions start C2D delivery on the session and register twin/method listeners.
 */
import type { Client, Subscription } from 'aedes';
import type { Logger } from '../context';
import { quote } from './device-session';
import type { DeviceSessionRegistry } from './session-registry';
import { classifySubscription, deviceboundTopicPrefix } from './topics';
import type { TwinMethodHandler } from './twin-methods';

export interface SubscribeOptions {
  log: Logger;
  registry: DeviceSessionRegistry;
  twinsAndMethods: TwinMethodHandler;
}

/** The SUBACK code aedes reports for a refused subscription. */
const refusedQos = 128;

export class SubscribeHandler {
  constructor(private readonly options: SubscribeOptions) {}

  /** aedes' `authorizeSubscribe`. */
  readonly authorizeSubscribe = (
    client: Client,
    subscription: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void,
  ): void => {
    const { registry, log } = this.options;
    const session = registry.sessionOf(client);
    const kind = session ? classifySubscription(session.deviceId, subscription.topic) : 'refused';
    if (kind === 'refused') {
      log.warn(
        `device ${quote(client.id)} (${registry.remoteOf(client)}): subscription to ${quote(subscription.topic)} refused`,
      );
      callback(null, null); // SUBACK 0x80
      return;
    }
    // IoT Hub grants at most QoS 1.
    callback(null, { ...subscription, qos: subscription.qos > 1 ? 1 : subscription.qos });
  };

  /** aedes' 'subscribe' event: what was granted. */
  subscribed(subscriptions: Subscription[], client: Client): void {
    const session = this.options.registry.sessionOf(client);
    if (!session) return;
    const c2dFilter = `${deviceboundTopicPrefix(session.deviceId)}#`;
    const granted = subscriptions
      .filter((s) => (s.qos as number) !== refusedQos)
      .map((s) => s.topic);
    if (granted.includes(c2dFilter)) session.subscribeC2D();
    this.options.twinsAndMethods.onSubscribe(client, session.deviceId, granted);
  }

  /** aedes' 'unsubscribe' event. */
  unsubscribed(topics: string[], client: Client): void {
    const session = this.options.registry.sessionOf(client);
    if (!session) return;
    if (topics.includes(`${deviceboundTopicPrefix(session.deviceId)}#`)) session.unsubscribeC2D();
    this.options.twinsAndMethods.onUnsubscribe(client, session.deviceId, topics);
  }
}
