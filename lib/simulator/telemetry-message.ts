/**
 * The tutorial's telemetry: `{deviceId, windSpeed}` with windSpeed = 10 + random·4 + 2, a message
 * id, a correlation id and the custom property `Property`, sent as UTF-8 JSON.
 */
import { randomUUID } from 'node:crypto';
import { Message } from 'azure-iot-device';

export const averageWindSpeed = 10;

export function windSpeedSample(random: () => number = Math.random): number {
  return averageWindSpeed + random() * 4 + 2;
}

export function telemetryMessage(
  deviceId: string,
  sequence: number,
  random: () => number = Math.random,
): Message {
  const reading = { deviceId, windSpeed: Math.round(windSpeedSample(random) * 100) / 100 };
  const message = new Message(JSON.stringify(reading));
  message.messageId = randomUUID();
  message.correlationId = `correlation_${sequence}`;
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('Property', `PropMsg_${sequence}`);
  return message;
}
