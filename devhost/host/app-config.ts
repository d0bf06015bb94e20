/**
 * What devhost reads from the app folder before loading code: `local.settings.json` (Values into
 * the environment; real environment variables win), `host.json` (route prefix, Event Hubs batch
 * options) and `%SETTING%` binding expressions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export class AppConfigError extends Error {
  override name = 'AppConfigError';
}

type Env = Record<string, string | undefined>;

/**
 * Where `char` first occurs outside a JSON string: Node 20 names an unexpected token without its
 * position ("Unexpected token 'H', ..."), and the first bare occurrence is where parsing stopped.
 */
function firstOutsideStrings(text: string, char: string): number {
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i += 1;
      else if (c === '"') inString = false;
    } else if (c === char) return i;
    else if (c === '"') inString = true;
  }
  return text.length;
}

/** Line and column (1-based) of a JSON.parse error, from its position or its own line/column. */
export function jsonErrorLocation(
  text: string,
  error: SyntaxError,
): { line: number; column: number } {
  const stated = /line (\d+) column (\d+)/.exec(error.message);
  if (stated) return { line: Number(stated[1]), column: Number(stated[2]) };
  const position = /at position (\d+)/.exec(error.message);
  const token = /^Unexpected token '(.)'/.exec(error.message)?.[1];
  // "Unexpected end of JSON input" has no position: the problem is at the end.
  const offset = position
    ? Number(position[1])
    : token !== undefined
      ? firstOutsideStrings(text, token)
      : text.length;
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function readJson(file: string, what: string): unknown {
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    if (!(error instanceof SyntaxError)) {
      throw new AppConfigError(`${what} (${file}) is not valid JSON: unreadable`);
    }
    const { line, column } = jsonErrorLocation(text, error);
    // The parser's own wording, without its position (it counts characters, not lines) and
    // without the excerpt it quotes, which could hold a key.
    const reason = error.message
      .replace(/\s*(?:in JSON )?at position \d+.*$/s, '')
      .replace(/,\s*".*$/s, '');
    throw new AppConfigError(
      `${what} (${file}) is not valid JSON at line ${line}, column ${column}: ${reason}`,
    );
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads `local.settings.json` `Values`. A missing file is fine (an empty object); a malformed one
 * throws an error naming the file and the problem, never a value.
 */
export function readLocalSettings(appDir: string): Record<string, string> {
  const file = join(appDir, 'local.settings.json');
  if (!existsSync(file)) return {};
  const parsed = readJson(file, 'local.settings.json');
  if (!isRecord(parsed))
    throw new AppConfigError(`local.settings.json (${file}) must be a JSON object`);
  const values = parsed.Values ?? {};
  if (!isRecord(values))
    throw new AppConfigError(`local.settings.json "Values" must be an object of strings`);
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string') result[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') result[name] = String(value);
    else if (value !== null) {
      throw new AppConfigError(`local.settings.json "Values.${name}" must be a string`);
    }
  }
  return result;
}

/** Copies settings into `env` where `env` has no value yet; returns the names it set. */
export function applySettings(settings: Record<string, string>, env: Env): string[] {
  const applied: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    if (env[name] === undefined) {
      env[name] = value;
      applied.push(name);
    }
  }
  return applied;
}

/**
 * Resolves `%NAME%` binding expressions (the whole value or parts of it) from app settings.
 * An unknown setting is an error naming it, as the host refuses to index such a function.
 */
export function resolveBindingExpression(value: string, env: Env, where: string): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const resolved = env[name];
    if (resolved === undefined) {
      throw new AppConfigError(
        `${where}: the app setting "${name}" referenced as %${name}% is not set`,
      );
    }
    return resolved;
  });
}

export interface EventHubsHostOptions {
  maxEventBatchSize: number;
  minEventBatchSize: number;
  maxWaitTimeSeconds: number;
  prefetchCount: number;
  batchCheckpointFrequency: number;
  initialOffset:
    | { type: 'fromStart' }
    | { type: 'fromEnd' }
    | { type: 'fromEnqueuedTime'; enqueuedTimeUtc: Date };
}

export interface HostConfig {
  routePrefix: string;
  eventHubs: EventHubsHostOptions;
}

/** Parses a .NET TimeSpan (`[d.]hh:mm:ss[.fff]`) or a number of seconds. */
export function parseTimeSpanSeconds(value: unknown, where: string): number {
  if (typeof value === 'number' && value >= 0) return value;
  if (typeof value === 'string') {
    const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/.exec(value.trim());
    if (match) {
      const [, days, hours, minutes, seconds] = match;
      return (
        Number(days ?? 0) * 86400 + Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds)
      );
    }
  }
  throw new AppConfigError(`${where} must be a TimeSpan like "00:00:05"`);
}

function positiveInt(value: unknown, fallback: number, where: string): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  throw new AppConfigError(`${where} must be a positive integer`);
}

export function readHostConfig(appDir: string): HostConfig {
  const file = join(appDir, 'host.json');
  const parsed = existsSync(file) ? readJson(file, 'host.json') : {};
  if (!isRecord(parsed)) throw new AppConfigError(`host.json (${file}) must be a JSON object`);
  const extensions = isRecord(parsed.extensions) ? parsed.extensions : {};
  const http = isRecord(extensions.http) ? extensions.http : {};
  const eh = isRecord(extensions.eventHubs) ? extensions.eventHubs : {};
  const routePrefix =
    typeof http.routePrefix === 'string' ? http.routePrefix.replace(/^\/+|\/+$/g, '') : 'api';

  const offset = isRecord(eh.initialOffsetOptions) ? eh.initialOffsetOptions : {};
  const offsetType = typeof offset.type === 'string' ? offset.type.toLowerCase() : 'fromstart';
  let initialOffset: EventHubsHostOptions['initialOffset'];
  if (offsetType === 'fromstart') initialOffset = { type: 'fromStart' };
  else if (offsetType === 'fromend') initialOffset = { type: 'fromEnd' };
  else if (offsetType === 'fromenqueuedtime') {
    const at = new Date(String(offset.enqueuedTimeUtc));
    if (Number.isNaN(at.getTime())) {
      throw new AppConfigError(
        'host.json extensions.eventHubs.initialOffsetOptions.enqueuedTimeUtc must be a date',
      );
    }
    initialOffset = { type: 'fromEnqueuedTime', enqueuedTimeUtc: at };
  } else {
    throw new AppConfigError(
      'host.json extensions.eventHubs.initialOffsetOptions.type must be fromStart, fromEnd or fromEnqueuedTime',
    );
  }

  const where = 'host.json extensions.eventHubs';
  return {
    routePrefix,
    eventHubs: {
      maxEventBatchSize: positiveInt(eh.maxEventBatchSize, 100, `${where}.maxEventBatchSize`),
      minEventBatchSize: positiveInt(eh.minEventBatchSize, 1, `${where}.minEventBatchSize`),
      maxWaitTimeSeconds:
        eh.maxWaitTime === undefined
          ? 60
          : parseTimeSpanSeconds(eh.maxWaitTime, `${where}.maxWaitTime`),
      prefetchCount: positiveInt(eh.prefetchCount, 300, `${where}.prefetchCount`),
      batchCheckpointFrequency: positiveInt(
        eh.batchCheckpointFrequency,
        1,
        `${where}.batchCheckpointFrequency`,
      ),
      initialOffset,
    },
  };
}
