/**
 * IoT Hub's device id rules: up to 128 case-sensitive ASCII characters, letters and digits plus
 * `- . + % _ # * ? ! ( ) , : = @ $ ' ;`.
 */
import { z } from 'zod';

export const deviceIdPattern = /^[A-Za-z0-9\-.+%_#*?!(),:=@$';]{1,128}$/;

// Device ids repeat from batch to batch; remember the valid ones (bounded).
const knownValid = new Set<string>();

export function isValidDeviceId(value: string): boolean {
  if (knownValid.has(value)) return true;
  if (!deviceIdPattern.test(value)) return false;
  if (knownValid.size >= 10_000) knownValid.clear();
  knownValid.add(value);
  return true;
}

export const deviceIdSchema = z
  .string()
  .regex(
    deviceIdPattern,
    "a device id is 1 to 128 characters: letters, digits and - . + % _ # * ? ! ( ) , : = @ $ ' ;",
  );
