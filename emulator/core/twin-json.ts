/**
 * The JSON rules of device twins, as IoT Hub documents them ("Understand and use device twins"):
 * - keys: non-empty, at most 1 KB, no `.`, `$`, space or control characters (C0/C1); keys starting
 *   with `$` are the hub's own (read-only) and refused in what clients send;
 * - values: strings (at most 4 KB), numbers, booleans, objects, arrays; `null` in a patch removes;
 * - nesting: at most 10 levels of objects under tags, desired or reported (the section's own keys
 *   are level 1);
 * - size: tags 8 KB, desired and reported 32 KB each, counted IoT Hub's way (key length plus value
 *   size: strings by character, numbers 8, booleans 4, objects the sum of what they hold),
 *   excluding the read-only `$version`/`$metadata`.
 * And the merge rule (JSON merge patch) that keeps `$metadata` in step with what changed.
 */
import { HubError } from './contracts';

export type JsonObject = Record<string, unknown>;

export const twinLimits = {
  tagsBytes: 8 * 1024,
  propertiesBytes: 32 * 1024,
  maxDepth: 10,
  keyBytes: 1024,
  stringBytes: 4 * 1024,
} as const;

/** The per-node stamp `$metadata` carries: when, and (desired only) at which section version. */
export interface MetadataStamp {
  $lastUpdated: string;
  $lastUpdatedVersion?: number;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const allControlCharacters = /[\u0000-\u001f\u007f-\u009f]/g;

function invalid(message: string): HubError {
  return new HubError('ArgumentInvalid', message);
}

function checkKey(key: string, where: string): void {
  if (key === '') throw invalid(`${where}: an empty property name is not allowed`);
  if (key.startsWith('$')) throw invalid(`${where}.${key}: names starting with '$' are read-only`);
  if (/[.$ ]/.test(key) || controlCharacters.test(key)) {
    throw invalid(
      `${where}: property name ${JSON.stringify(key)} contains '.', '$', a space or a control character`,
    );
  }
  if (Buffer.byteLength(key, 'utf8') > twinLimits.keyBytes) {
    throw invalid(`${where}: a property name exceeds ${twinLimits.keyBytes} bytes`);
  }
}

function checkValue(value: unknown, where: string, depth: number, allowNull: boolean): void {
  if (value === null) {
    if (!allowNull) throw invalid(`${where}: null is only allowed in a patch`);
    return;
  }
  if (typeof value === 'string') {
    if (Buffer.byteLength(value, 'utf8') > twinLimits.stringBytes) {
      throw invalid(`${where}: a string value exceeds ${twinLimits.stringBytes} bytes`);
    }
    return;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return;
  if (Array.isArray(value)) {
    // Array elements are values, not properties: null inside one is a value, not a removal.
    value.forEach((item, i) => checkValue(item, `${where}[${i}]`, depth, true));
    return;
  }
  if (isJsonObject(value)) {
    checkObject(value, where, depth + 1, allowNull);
    return;
  }
  throw invalid(`${where}: unsupported value`);
}

function checkObject(object: JsonObject, where: string, depth: number, allowNull: boolean): void {
  if (depth > twinLimits.maxDepth) {
    throw invalid(`${where}: objects nest deeper than ${twinLimits.maxDepth} levels`);
  }
  for (const [key, value] of Object.entries(object)) {
    checkKey(key, where);
    checkValue(value, `${where}.${key}`, depth, allowNull);
  }
}

/**
 * Checks what a client sent for one section (`where` names it in errors). The read-only
 * `$version` and `$metadata` at the section's top are dropped (a client may send back what it
 * read); any other `$` name is refused. Returns the section without them.
 */
export function validateSection(value: unknown, where: string, allowNull: boolean): JsonObject {
  if (!isJsonObject(value)) throw invalid(`${where} must be a JSON object`);
  const clean: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === '$version' || key === '$metadata') continue;
    clean[key] = item;
  }
  checkObject(clean, where, 1, allowNull);
  return clean;
}

/** IoT Hub's size of a value (see the file comment). */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.replace(allControlCharacters, '').length;
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (Array.isArray(value)) return value.reduce((n: number, item) => n + sizeOf(item), 0);
  if (isJsonObject(value)) {
    let total = 0;
    for (const [key, item] of Object.entries(value)) total += sizeOf(key) + sizeOf(item);
    return total;
  }
  return 0;
}

/** Refuses a section whose size (after a change) is over its limit. */
export function assertSize(section: JsonObject, where: string, limit: number): void {
  const size = sizeOf(section);
  if (size > limit) {
    throw new HubError(
      'MessageTooLarge',
      `${where} would be ${size} bytes, over IoT Hub's limit of ${limit} bytes`,
    );
  }
}

export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}

/**
 * Applies a JSON merge patch (RFC 7386: `null` removes, objects merge, anything else replaces) to
 * `target` in place, stamping every node it touches — and their parents — in `metadata`.
 */
export function mergeWithMetadata(
  target: JsonObject,
  metadata: JsonObject,
  patch: JsonObject,
  stamp: MetadataStamp,
): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
      delete metadata[key];
    } else if (isJsonObject(value)) {
      if (!isJsonObject(target[key])) {
        target[key] = {};
        metadata[key] = {};
      }
      const childMeta = isJsonObject(metadata[key]) ? metadata[key] : (metadata[key] = {});
      mergeWithMetadata(target[key] as JsonObject, childMeta, value, stamp);
    } else {
      target[key] = cloneJson(value);
      metadata[key] = { ...stamp };
    }
  }
  Object.assign(metadata, stamp);
}

/** `$metadata` for a section written as a whole: every node stamped alike. */
export function metadataFor(section: JsonObject, stamp: MetadataStamp): JsonObject {
  const metadata: JsonObject = { ...stamp };
  for (const [key, value] of Object.entries(section)) {
    metadata[key] = isJsonObject(value) ? metadataFor(value, stamp) : { ...stamp };
  }
  return metadata;
}
