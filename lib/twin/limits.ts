/**
 * IoT Hub's rules for the JSON of device twins ("Understand and use device twins"), checked at the
 * API's edge so that a bad patch is refused with a problem that names the rule, before IoT Hub is
 * called:
 * - property names: non-empty, at most 1 KB of UTF-8, no `.`, `$`, space or control character
 *   (C0 and C1); names starting with `$` belong to the hub;
 * - values: strings of at most 4 KB, numbers, booleans, objects, arrays; `null` removes a property;
 * - nesting: at most 10 levels of objects in tags or desired properties (the section's own
 *   properties are level 1);
 * - size: tags 8 KB, desired properties 32 KB, counted IoT Hub's way (each name's length plus its
 *   value's: strings by character without control characters, numbers 8, booleans 4, objects
 *   the sum of what they hold).
 * The size of a patch is a lower bound of the merged twin's; IoT Hub checks the merged document
 * and its refusal is mapped to the same 413.
 */
import { ApiError, type ProblemIssue } from '../http/problem';

export const twinLimits = {
  tagsBytes: 8 * 1024,
  desiredBytes: 32 * 1024,
  maxDepth: 10,
  keyBytes: 1024,
  stringBytes: 4 * 1024,
} as const;

export type TwinSectionName = 'tags' | 'desired';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// eslint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/g;

function keyProblem(key: string): string | undefined {
  if (key === '') return 'a property name must not be empty';
  if (key.startsWith('$')) return "names starting with '$' are IoT Hub's own (read-only)";
  if (/[. ]/.test(key) || key.includes('$') || controlCharacter.test(key)) {
    return "a property name must not contain '.', '$', a space or a control character";
  }
  if (Buffer.byteLength(key, 'utf8') > twinLimits.keyBytes) {
    return `a property name is limited to ${twinLimits.keyBytes} bytes`;
  }
  return undefined;
}

function valueIssues(value: unknown, path: string, depth: number, issues: ProblemIssue[]): void {
  if (typeof value === 'string') {
    if (Buffer.byteLength(value, 'utf8') > twinLimits.stringBytes) {
      issues.push({
        path,
        message: `a string value is limited to ${twinLimits.stringBytes} bytes`,
      });
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => valueIssues(item, `${path}.${i}`, depth, issues));
  } else if (isObject(value)) {
    objectIssues(value, path, depth + 1, issues);
  }
}

function objectIssues(
  object: JsonObject,
  path: string,
  depth: number,
  issues: ProblemIssue[],
): void {
  if (depth > twinLimits.maxDepth) {
    issues.push({ path, message: `objects nest at most ${twinLimits.maxDepth} levels deep` });
    return;
  }
  for (const [key, value] of Object.entries(object)) {
    const where = `${path}.${key}`;
    const problem = keyProblem(key);
    if (problem) issues.push({ path: where, message: problem });
    valueIssues(value, where, depth, issues);
  }
}

/** Every rule (other than size) that `section` breaks, each with its path. */
export function twinSectionIssues(section: JsonObject, name: TwinSectionName): ProblemIssue[] {
  const issues: ProblemIssue[] = [];
  objectIssues(section, name, 1, issues);
  return issues;
}

/** IoT Hub's size of a value; `null` (a removal in a patch) counts nothing. */
export function twinSize(value: unknown): number {
  if (typeof value === 'string') return value.replace(controlCharacters, '').length;
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (Array.isArray(value)) return value.reduce((n: number, item) => n + twinSize(item), 0);
  if (isObject(value)) {
    let total = 0;
    for (const [key, item] of Object.entries(value)) total += twinSize(key) + twinSize(item);
    return total;
  }
  return 0;
}

const sectionLimit: Record<TwinSectionName, number> = {
  tags: twinLimits.tagsBytes,
  desired: twinLimits.desiredBytes,
};

/** A 413 naming the limit when `section` alone is over it. */
export function assertTwinSectionSize(section: JsonObject, name: TwinSectionName): void {
  const size = twinSize(section);
  const limit = sectionLimit[name];
  if (size > limit) {
    throw new ApiError(
      'payloadTooLarge',
      `${name} is ${size} bytes as IoT Hub counts twin size; IoT Hub limits ${name} to ${limit} bytes.`,
    );
  }
}
