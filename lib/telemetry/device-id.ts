/** Device ids as IoT Hub accepts them (`lib/iothub/ids.ts`), checked once per batch stream. */
import { z } from 'zod';
import { deviceIdPattern, deviceIdRule } from '../iothub/ids';

// Device ids repeat from batch to batch; remember the valid ones (bounded).
const knownValid = new Set<string>();

export function isValidDeviceId(value: string): boolean {
  if (knownValid.has(value)) return true;
  if (!deviceIdPattern.test(value)) return false;
  if (knownValid.size >= 10_000) knownValid.clear();
  knownValid.add(value);
  return true;
}

export const deviceIdSchema = z.string().regex(deviceIdPattern, `a device id is ${deviceIdRule}`);
