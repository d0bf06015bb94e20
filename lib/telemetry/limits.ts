/**
 * How large each device-controlled field of a stored reading may be.
 *
 * Table storage holds a string property of at most 32K UTF-16 characters and an entity of at most
 * 1 MiB; one property over that fails the reading's whole transaction (`PropertyValueTooLarge`).
 * These limits keep a reading's entity far below both (the whole entity stays under ~40K
 * characters), so a reading that passes them is always storable. A reading that does not is
 * dead-lettered with a reason naming the field — never stored truncated.
 *
 * JS string lengths are UTF-16 code units, exactly what Table storage counts.
 */
import type { EventMetadata } from './event-metadata';

export const fieldLimits = {
  /** `$.ct`: real content types are under 100 characters. */
  contentTypeChars: 1024,
  /** `$.ce`. */
  contentEncodingChars: 256,
  /** `$.mid`, `$.cid` (IoT Hub documents 128 for message ids; ids from AMQP may be longer). */
  idChars: 1024,
  /** The hub's offset (a number as text). */
  offsetChars: 256,
  /** Application properties: how many, and each name and value. */
  propertyCount: 128,
  propertyNameChars: 256,
  propertyValueChars: 8192,
  /** All properties as the JSON column `properties`. */
  propertiesJsonChars: 16_000,
} as const;

export type FieldProblem = { reason: 'field-too-large' | 'too-many-properties'; detail: string };

/** A property name as it may appear in a detail: short, on one line. */
function shown(name: string): string {
  const short = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  return JSON.stringify(short);
}

function tooLarge(field: string, length: number, limit: number): FieldProblem {
  return {
    reason: 'field-too-large',
    detail: `${field} is ${length} characters; a stored reading holds at most ${limit}`,
  };
}

function checkText(
  field: string,
  value: string | undefined,
  limit: number,
): FieldProblem | undefined {
  return value !== undefined && value.length > limit
    ? tooLarge(field, value.length, limit)
    : undefined;
}

function checkProperties(properties: Record<string, string>): FieldProblem | undefined {
  let count = 0;
  // An upper bound of the JSON size; the exact size is computed only when it might matter.
  let bound = 2;
  for (const name in properties) {
    const value = properties[name] ?? '';
    count += 1;
    if (count > fieldLimits.propertyCount) {
      return {
        reason: 'too-many-properties',
        detail: `more than ${fieldLimits.propertyCount} application properties`,
      };
    }
    if (name.length > fieldLimits.propertyNameChars) {
      return tooLarge(
        `the name of property ${shown(name)}`,
        name.length,
        fieldLimits.propertyNameChars,
      );
    }
    if (value.length > fieldLimits.propertyValueChars) {
      return tooLarge(`property ${shown(name)}`, value.length, fieldLimits.propertyValueChars);
    }
    // JSON escapes a character as at most 6 (`\u0000`).
    bound += (name.length + value.length) * 6 + 6;
  }
  if (bound > fieldLimits.propertiesJsonChars) {
    const json = JSON.stringify(properties).length;
    if (json > fieldLimits.propertiesJsonChars) {
      return tooLarge(
        'the application properties (as JSON)',
        json,
        fieldLimits.propertiesJsonChars,
      );
    }
  }
  return undefined;
}

/** The first field of the event that a stored reading could not hold, or undefined. */
export function unstorableField(meta: EventMetadata): FieldProblem | undefined {
  return (
    checkText('contentType', meta.contentType, fieldLimits.contentTypeChars) ??
    checkText('contentEncoding', meta.contentEncoding, fieldLimits.contentEncodingChars) ??
    checkText('messageId', meta.messageId, fieldLimits.idChars) ??
    checkText('correlationId', meta.correlationId, fieldLimits.idChars) ??
    checkText('offset', meta.offset, fieldLimits.offsetChars) ??
    checkProperties(meta.properties)
  );
}
