/**
 * IoT Hub's MQTT property bags: the last topic segment of telemetry and C2D topics,
 * `k=v&k2=v2` with every key and value URL-encoded. Well-known `$.`-keys carry the system
 * properties; everything else is an application property. (azure-iot-device-mqtt builds the
 * system part with `querystring.stringify`, so `$` arrives as `%24`: keys are decoded too.)
 */
import type { C2DMessage, TelemetryInput } from '../core/contracts';

/** The system properties a property bag can carry, as the core names them. */
export type SystemProperties = Pick<
  TelemetryInput,
  'messageId' | 'correlationId' | 'userId' | 'to' | 'contentType' | 'contentEncoding' | 'expiryTime'
>;

export interface DecodedBag {
  system: SystemProperties;
  properties: Record<string, string>;
}

export class PropertyBagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PropertyBagError';
  }
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new PropertyBagError('property bag has a malformed percent-encoding');
  }
}

/** Parses a property bag (empty string = no properties). Throws PropertyBagError. */
export function decodePropertyBag(bag: string): DecodedBag {
  const system: SystemProperties = {};
  // A null-prototype object: keys come from the device, '__proto__' must stay a plain key.
  const properties = Object.create(null) as Record<string, string>;
  if (bag === '') return { system, properties };
  for (const pair of bag.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    if (key === '') throw new PropertyBagError('property bag has an empty key');
    switch (key) {
      case '$.mid':
        system.messageId = value;
        break;
      case '$.cid':
        system.correlationId = value;
        break;
      case '$.uid':
        system.userId = value;
        break;
      case '$.to':
        system.to = value;
        break;
      case '$.ct':
        system.contentType = value;
        break;
      case '$.ce':
        system.contentEncoding = value;
        break;
      case '$.exp': {
        const time = Date.parse(value);
        if (Number.isNaN(time)) throw new PropertyBagError('$.exp is not a date');
        system.expiryTime = time;
        break;
      }
      default:
        properties[key] = value;
    }
  }
  return { system, properties: { ...properties } };
}

function pair(key: string, value: string): string {
  return `${encodeURIComponent(key)}=${encodeURIComponent(value)}`;
}

/** The bag for a C2D message as the device SDK reads it back (`topic.split('/')[4]`). */
export function encodeC2DPropertyBag(message: C2DMessage): string {
  const parts = [pair('$.mid', message.messageId)];
  if (message.correlationId !== undefined) parts.push(pair('$.cid', message.correlationId));
  parts.push(pair('$.to', message.to));
  if (message.userId !== undefined) parts.push(pair('$.uid', message.userId));
  if (message.contentType !== undefined) parts.push(pair('$.ct', message.contentType));
  if (message.contentEncoding !== undefined) parts.push(pair('$.ce', message.contentEncoding));
  parts.push(pair('$.exp', new Date(message.expiryTime).toISOString()));
  for (const [key, value] of Object.entries(message.properties)) parts.push(pair(key, value));
  return parts.join('&');
}
