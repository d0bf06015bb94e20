/**
 * IoT Hub's device id rules: up to 128 case-sensitive ASCII characters, letters and digits plus
 * `- . + % _ # * ? ! ( ) , : = @ $ ' ;`.
 */
import { z } from 'zod';

export const deviceIdPattern = /^[A-Za-z0-9\-.+%_#*?!(),:=@$';]{1,128}$/;

export function isValidDeviceId(value: string): boolean {
  return deviceIdPattern.test(value);
}

export const deviceIdSchema = z
  .string()
  .regex(
    deviceIdPattern,
    "a device id is 1 to 128 characters: letters, digits and - . + % _ # * ? ! ( ) , : = @ $ ' ;",
  );
