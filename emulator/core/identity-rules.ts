/** IoT Hub's rules for device ids and symmetric keys, and how the hub makes new ones. */
import { randomBytes, randomInt } from 'node:crypto';
import { HubError } from './contracts';
import type { DeviceAuthenticationInput, SymmetricKeys, X509Authentication } from './contracts';

/**
 * IoT Hub's device id rule ("Device identity properties"): 1-128 ASCII letters, digits and
 * `- : . + % _ # * ? ! ( ) , = @ $ '`. No `;` (the current rule leaves it out, and it separates
 * connection string fields). `+` and `#` are valid ids that MQTT cannot carry: see docs/emulator.md.
 */
const DEVICE_ID_PATTERN = /^[A-Za-z0-9\-:.+%_#*?!(),=@$']{1,128}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;

/** Throws ArgumentInvalid unless the id is 1–128 characters of IoT Hub's allowed set. */
export function assertValidDeviceId(deviceId: unknown): asserts deviceId is string {
  if (typeof deviceId !== 'string' || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new HubError(
      'ArgumentInvalid',
      "The device id must be 1-128 ASCII characters: letters, digits and - : . + % _ # * ? ! ( ) , = @ $ '",
    );
  }
}

/** 32 random bytes, base64 — what IoT Hub generates. */
export function generateKey(): string {
  return randomBytes(32).toString('base64');
}

/** Fills absent or empty keys and validates supplied ones (base64 of 16–64 bytes). */
export function resolveKeys(
  supplied: Partial<SymmetricKeys> | undefined,
  current?: SymmetricKeys,
): SymmetricKeys {
  const pick = (value: string | undefined, fallback: string | undefined, name: string): string => {
    if (value === undefined || value === '') return fallback ?? generateKey();
    assertValidKey(value, name);
    return value;
  };
  return {
    primaryKey: pick(supplied?.primaryKey, current?.primaryKey, 'primary'),
    secondaryKey: pick(supplied?.secondaryKey, current?.secondaryKey, 'secondary'),
  };
}

function assertValidKey(key: string, name: string): void {
  const bytes = BASE64_PATTERN.test(key) ? Buffer.from(key, 'base64').length : 0;
  if (bytes < MIN_KEY_BYTES || bytes > MAX_KEY_BYTES) {
    // Never echo the key itself: error messages end up in logs.
    throw new HubError(
      'ArgumentInvalid',
      `The ${name} key must be base64 encoding of ${MIN_KEY_BYTES}-${MAX_KEY_BYTES} bytes`,
    );
  }
}

/** A SHA-1 (40 hex digits) or SHA-256 (64) thumbprint, as IoT Hub accepts them. */
const THUMBPRINT_PATTERN = /^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/;

function thumbprint(value: string | null | undefined, name: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (!THUMBPRINT_PATTERN.test(value)) {
    throw new HubError(
      'ArgumentInvalid',
      `The ${name} thumbprint must be a SHA-1 (40) or SHA-256 (64) hexadecimal thumbprint`,
    );
  }
  return value.toUpperCase();
}

const noKeys: SymmetricKeys = { primaryKey: '', secondaryKey: '' };

/**
 * Keys and X.509 settings of a device after a create (`current` absent) or an update. An X.509
 * device has no keys (a SAS token can never authenticate it); a device switched back to SAS gets
 * new ones unless it supplies its own. Absent `auth` keeps the current kind.
 */
export function resolveAuthentication(
  auth: DeviceAuthenticationInput | undefined,
  keys: Partial<SymmetricKeys> | undefined,
  current?: { keys: SymmetricKeys; authentication?: X509Authentication },
): { keys: SymmetricKeys; authentication?: X509Authentication } {
  const wanted = auth ?? current?.authentication ?? { type: 'sas' };
  if (wanted.type === 'sas') {
    return { keys: resolveKeys(keys, current?.authentication ? undefined : current?.keys) };
  }
  if (wanted.type === 'certificateAuthority') {
    return { keys: { ...noKeys }, authentication: { type: 'certificateAuthority' } };
  }
  const primary = thumbprint(wanted.primaryThumbprint, 'primary');
  const secondary = thumbprint(wanted.secondaryThumbprint, 'secondary');
  if (primary === null && secondary === null) {
    throw new HubError('ArgumentInvalid', 'A selfSigned device needs an X.509 thumbprint');
  }
  return {
    keys: { ...noKeys },
    authentication: {
      type: 'selfSigned',
      primaryThumbprint: primary,
      secondaryThumbprint: secondary,
    },
  };
}

/** Same kind of authentication, same thumbprints. */
export function sameAuthentication(a?: X509Authentication, b?: X509Authentication): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** An 18-digit decimal string, shaped like IoT Hub's generation ids. */
export function generateGenerationId(): string {
  let id = String(randomInt(1, 10));
  while (id.length < 18) id += String(randomInt(0, 10));
  return id;
}

/** IoT Hub etags are base64 of a number; a monotonically increasing counter keeps them unique. */
export function etagFor(counter: number): string {
  return Buffer.from(String(counter)).toString('base64');
}

/** The counter an etag was made from, or 0 for a foreign one. */
export function counterOfEtag(etag: string): number {
  const n = Number(Buffer.from(etag, 'base64').toString('utf8'));
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/** `ifMatch` may arrive quoted from HTTP; `*` or absent matches anything. */
export function etagMatches(etag: string, ifMatch: string | undefined): boolean {
  if (ifMatch === undefined) return true;
  const bare = ifMatch
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
  return bare === '*' || bare === '' || bare === etag;
}
