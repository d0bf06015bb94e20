/**
 * Device telemetry over AMQP: messages on `/devices/{id}/messages/events` land in the Event
 * Hub-compatible log through the same core call (`d2c.append`) and with the same system
 * properties as MQTT and HTTPS telemetry. A delivery is accepted only once the event is durable;
 * a refused one is rejected with the AMQP condition IoT Hub uses.
 */
import type { Delivery } from 'rhea';
import type { EmulatorContext } from '../context';
import { HubError, type TelemetryInput } from '../core/contracts';
import {
  bodyBytes,
  expiryTime,
  messageIdText,
  propertyText,
  rejectionCondition,
} from './service-messages';

/** IoT Hub's limit for one device-to-cloud message (body and properties). */
export const maxTelemetryBytes = 256 * 1024;
/** What IoT Hub reports as `iothub-connection-auth-method` for a device's own SAS token. */
export const deviceSasAuthMethod =
  '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}';

type DeviceTelemetry = Omit<TelemetryInput, 'deviceId' | 'generationId' | 'authMethod'>;

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // AMQP `user-id` is binary.
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

function applicationProperties(value: unknown): Record<string, string> {
  // Keys come from the device: a null-prototype object keeps '__proto__' a plain key.
  const properties = Object.create(null) as Record<string, string>;
  if (typeof value !== 'object' || value === null) return properties;
  for (const [key, raw] of Object.entries(value)) {
    const converted = propertyText(key, raw);
    if (converted !== undefined) properties[key] = converted;
  }
  return { ...properties };
}

/** A device's AMQP message as telemetry. Throws ArgumentInvalid or MessageTooLarge. */
export function telemetryFromAmqp(message: Record<string, unknown>): DeviceTelemetry {
  const body = bodyBytes(message.body);
  const properties = applicationProperties(message.application_properties);
  const propertyBytes = Object.entries(properties).reduce(
    (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value),
    0,
  );
  if (body.length + propertyBytes > maxTelemetryBytes) {
    throw new HubError('MessageTooLarge', `message exceeds ${maxTelemetryBytes} bytes`);
  }
  const telemetry: DeviceTelemetry = { body, properties };
  const optional: Partial<DeviceTelemetry> = {
    messageId: messageIdText(message.message_id, 'message_id'),
    correlationId: messageIdText(message.correlation_id, 'correlation_id'),
    userId: text(message.user_id),
    to: text(message.to),
    contentType: text(message.content_type),
    contentEncoding: text(message.content_encoding),
    expiryTime: expiryTime(message.absolute_expiry_time),
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) Object.assign(telemetry, { [key]: value });
  }
  return telemetry;
}

function settle(delivery: Delivery, error?: HubError): void {
  if (delivery.remote_settled) return;
  if (error) {
    delivery.reject({ condition: rejectionCondition(error.code), description: error.message });
  } else {
    delivery.accept();
  }
}

/** Stores one telemetry delivery of `deviceId` and settles it; never throws. */
export async function receiveTelemetry(
  ctx: EmulatorContext,
  deviceId: string,
  message: Record<string, unknown>,
  delivery: Delivery,
  authMethod = deviceSasAuthMethod,
): Promise<void> {
  try {
    const telemetry = telemetryFromAmqp(message);
    const generationId = ctx.core.registry.enabledGenerationId(deviceId);
    if (generationId === undefined) {
      throw new HubError('Unauthorized', 'the device is not enabled');
    }
    await ctx.core.d2c.append({
      ...telemetry,
      deviceId,
      generationId,
      authMethod,
    });
    ctx.core.registry.recordActivity(deviceId);
    settle(delivery);
  } catch (error) {
    const refusal =
      error instanceof HubError ? error : new HubError('ServerError', 'internal error');
    if (!(error instanceof HubError)) {
      ctx.log.error(`device ${JSON.stringify(deviceId)}: telemetry not stored: ${String(error)}`);
    } else {
      ctx.log.warn(`device ${JSON.stringify(deviceId)}: telemetry refused: ${error.message}`);
    }
    try {
      settle(delivery, refusal);
    } catch {
      // The link or connection is gone; nothing was stored, the device will not see an accept.
    }
  }
}
