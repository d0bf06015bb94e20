/**
 * IoT Hub's MQTT topic rules for one device: what it may publish and subscribe to. Everything
 * here is a pure function of the topic and the authenticated device id.
 */

export type PublishTarget =
  | { kind: 'telemetry'; bag: string }
  | { kind: 'twin-get'; requestId: string }
  | { kind: 'twin-patch-reported'; requestId: string }
  | { kind: 'method-response'; requestId: string; status: number }
  | { kind: 'refused'; reason: string };

/** `devices/<id>/messages/events/` — IoT Hub device ids never contain `/`. */
export function eventsTopicPrefix(deviceId: string): string {
  return `devices/${deviceId}/messages/events/`;
}

export function deviceboundTopicPrefix(deviceId: string): string {
  return `devices/${deviceId}/messages/devicebound/`;
}

/** `?$rid=…&…` → the request id, or undefined. */
function requestIdOf(query: string): string | undefined {
  if (!query.startsWith('?')) return undefined;
  for (const part of query.slice(1).split('&')) {
    const [key, value] = part.split('=', 2);
    if (key === '$rid' && value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** `$iothub/...` requests a device may make on its own connection. */
function classifyIotHubRequest(topic: string): PublishTarget {
  const twinGet = '$iothub/twin/GET/';
  const twinPatch = '$iothub/twin/PATCH/properties/reported/';
  const methodRes = /^\$iothub\/methods\/res\/(\d{3})\/(\?.*)$/.exec(topic);
  if (topic.startsWith(twinGet)) {
    const requestId = requestIdOf(topic.slice(twinGet.length));
    if (requestId !== undefined) return { kind: 'twin-get', requestId };
  } else if (topic.startsWith(twinPatch)) {
    const requestId = requestIdOf(topic.slice(twinPatch.length));
    if (requestId !== undefined) return { kind: 'twin-patch-reported', requestId };
  } else if (methodRes?.[1] && methodRes[2]) {
    const requestId = requestIdOf(methodRes[2]);
    if (requestId !== undefined) {
      return { kind: 'method-response', requestId, status: Number(methodRes[1]) };
    }
  }
  return { kind: 'refused', reason: 'unsupported $iothub request' };
}

export function classifyPublish(deviceId: string, topic: string): PublishTarget {
  const events = eventsTopicPrefix(deviceId);
  if (topic.startsWith(events)) {
    const bag = topic.slice(events.length);
    // The bag is one topic level; a further '/' would be a different (unknown) topic.
    if (bag.includes('/')) return { kind: 'refused', reason: 'events topic has extra levels' };
    return { kind: 'telemetry', bag };
  }
  // The SDK omits the trailing slash nowhere, but raw clients may: IoT Hub accepts both.
  if (topic === events.slice(0, -1)) return { kind: 'telemetry', bag: '' };
  if (topic.startsWith('$iothub/')) return classifyIotHubRequest(topic);
  if (topic.startsWith('devices/')) return { kind: 'refused', reason: 'not this device’s topic' };
  return { kind: 'refused', reason: 'topic is not an IoT Hub device topic' };
}

export type SubscriptionKind = 'c2d' | 'twin-responses' | 'twin-desired' | 'methods' | 'refused';

/** The subscriptions IoT Hub grants a device (and the SDK asks for). */
export function classifySubscription(deviceId: string, filter: string): SubscriptionKind {
  switch (filter) {
    case `${deviceboundTopicPrefix(deviceId)}#`:
      return 'c2d';
    case '$iothub/twin/res/#':
      return 'twin-responses';
    case '$iothub/twin/PATCH/properties/desired/#':
      return 'twin-desired';
    case '$iothub/methods/POST/#':
      return 'methods';
    default:
      return 'refused';
  }
}
