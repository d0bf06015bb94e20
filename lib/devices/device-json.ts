/**
 * The API's view of a device: what the registry (or a device query row) says, without keys.
 * Query rows are device twins, whose `etag` is the twin's; the device's own etag is `deviceEtag`.
 */
import type { Device } from './schemas';
import type { HubDevice } from '../iothub/clients';

/** IoT Hub's "never" timestamp for devices that were never active. */
const neverActive = /^0001-01-01/;

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function toApiDevice(source: HubDevice | Record<string, unknown>): Device {
  const row = source as Record<string, unknown>;
  const lastActivityTime = text(row.lastActivityTime);
  const statusReason = text(row.statusReason);
  const count = Number(row.cloudToDeviceMessageCount ?? 0);
  return {
    deviceId: String(row.deviceId),
    status: row.status === 'disabled' ? 'disabled' : 'enabled',
    ...(statusReason ? { statusReason } : {}),
    etag: text(row.deviceEtag) ?? text(row.etag) ?? '',
    connectionState: /^connected$/i.test(String(row.connectionState))
      ? 'Connected'
      : 'Disconnected',
    ...(lastActivityTime && !neverActive.test(lastActivityTime) ? { lastActivityTime } : {}),
    cloudToDeviceMessageCount: Number.isSafeInteger(count) && count >= 0 ? count : 0,
  };
}
