/**
 * The telemetry reading schema: a JSON object with a numeric `windSpeed` (the tutorial's
 * telemetry), plus any other top-level numeric fields.
 *
 * Decision: fields that are not finite numbers (the body's own `deviceId`, strings, booleans,
 * nested objects) are dropped, not rejected — the tutorial's body carries a `deviceId` string,
 * which is untrusted and must not fail the reading. Numeric fields named like the enrichment
 * (`deviceId`, `messageId`, `enqueuedTime`, `partition`, `sequenceNumber`, …) are dropped too, so
 * a body cannot masquerade as the hub's facts. More than `maxReadingFields` numeric fields, or
 * names that are not identifiers of at most 64 characters, are rejected.
 */
import { z } from 'zod';

export const maxReadingFields = 64;

/** Names the API uses for the enrichment; a reading cannot define them. */
export const reservedFieldNames: ReadonlySet<string> = new Set([
  'deviceId',
  'messageId',
  'correlationId',
  'enqueuedTime',
  'partition',
  'sequenceNumber',
  'offset',
  'properties',
  'contentType',
  'contentEncoding',
  '__proto__',
  'constructor',
  'prototype',
]);

const fieldName = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
// The same few field names arrive in every reading; remember the valid ones (bounded).
const knownFieldNames = new Set<string>();

function isFieldName(name: string): boolean {
  if (knownFieldNames.has(name)) return true;
  if (!fieldName.test(name)) return false;
  if (knownFieldNames.size >= 10_000) knownFieldNames.clear();
  knownFieldNames.add(name);
  return true;
}

const telemetryBody = z.looseObject({
  windSpeed: z.number({ error: 'windSpeed must be a finite number' }),
});

export type Reading = Record<string, number> & { windSpeed: number };

export type ValidationResult = { ok: true; reading: Reading } | { ok: false; detail: string };

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'invalid_type' && issue.path.length === 0) {
        return 'the body must be a JSON object';
      }
      return path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

export function validateReading(value: unknown): ValidationResult {
  const parsed = telemetryBody.safeParse(value);
  if (!parsed.success) return { ok: false, detail: describe(parsed.error) };
  const reading: Record<string, number> = {};
  let count = 0;
  const body = parsed.data;
  for (const name in body) {
    const field = body[name];
    // Own fields only: a JSON "__proto__" key must not smuggle inherited ones in.
    if (!Object.hasOwn(body, name)) continue;
    if (typeof field !== 'number' || !Number.isFinite(field) || reservedFieldNames.has(name)) {
      continue;
    }
    if (!isFieldName(name)) {
      return {
        ok: false,
        detail: 'numeric field names must be identifiers of at most 64 characters',
      };
    }
    count += 1;
    if (count > maxReadingFields) {
      return { ok: false, detail: `more than ${maxReadingFields} numeric fields` };
    }
    reading[name] = field;
  }
  return { ok: true, reading: reading as Reading };
}
