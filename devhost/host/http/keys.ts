/**
 * Function keys as the host checks them: `authLevel: 'function'` accepts the function key or the
 * master key, `'admin'` only the master key, `'anonymous'` anything. A key arrives in the
 * `x-functions-key` header or the `code` query parameter. Locally there is one function key and
 * one master key: `LOCAL_FUNCTION_KEY` / `LOCAL_MASTER_KEY`, else generated once and kept in the
 * data folder so curl commands keep working across restarts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HostKeys {
  functionKey: string;
  masterKey: string;
  /** Where generated keys are kept, if any were generated. */
  file?: string;
}

export function parseAuthLevel(value: unknown, functionName: string): AuthLevel {
  const level = typeof value === 'string' ? value.toLowerCase() : 'anonymous';
  if (level === 'anonymous' || level === 'function' || level === 'admin') return level;
  // `user` and `system` levels need the App Service front end; refuse rather than guess.
  throw new Error(
    `function "${functionName}": authLevel "${String(value)}" is not supported by devhost`,
  );
}

function generateKey(): string {
  // Same alphabet and length class as the host's generated keys (URL-safe, no padding).
  return randomBytes(40).toString('base64url');
}

function isKeyFile(value: unknown): value is { functionKey: string; masterKey: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { functionKey?: unknown }).functionKey === 'string' &&
    typeof (value as { masterKey?: unknown }).masterKey === 'string'
  );
}

export function loadOrCreateKeys(
  dataDir: string,
  env: Record<string, string | undefined>,
): HostKeys {
  const fromEnvFunction = env.LOCAL_FUNCTION_KEY?.trim() || undefined;
  const fromEnvMaster = env.LOCAL_MASTER_KEY?.trim() || undefined;
  if (fromEnvFunction && fromEnvMaster)
    return { functionKey: fromEnvFunction, masterKey: fromEnvMaster };
  const file = join(dataDir, 'keys.json');
  let stored: { functionKey: string; masterKey: string } | undefined;
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (isKeyFile(parsed)) stored = parsed;
    } catch {
      stored = undefined;
    }
  }
  if (!stored) {
    stored = { functionKey: generateKey(), masterKey: generateKey() };
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  }
  return {
    functionKey: fromEnvFunction ?? stored.functionKey,
    masterKey: fromEnvMaster ?? stored.masterKey,
    file,
  };
}

function sameKey(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Where a request's key came from, for 401 details that name the place but never the key. */
export type KeySource = 'x-functions-key header' | 'code query parameter';

export interface PresentedKey {
  key: string;
  source: KeySource;
}

/** The key a request presents: the header wins over the query, as in the host. */
export function presentedKey(
  headerValue: string | string[] | undefined,
  query: URLSearchParams,
): PresentedKey | undefined {
  const header = Array.isArray(headerValue) ? headerValue[0] : headerValue;
  if (header) return { key: header, source: 'x-functions-key header' };
  const code = query.get('code');
  return code ? { key: code, source: 'code query parameter' } : undefined;
}

export function isAuthorized(level: AuthLevel, key: string | undefined, keys: HostKeys): boolean {
  if (level === 'anonymous') return true;
  if (key === undefined) return false;
  if (sameKey(key, keys.masterKey)) return true;
  return level === 'function' && sameKey(key, keys.functionKey);
}

/**
 * Why a request is refused, or undefined when its key is good enough for `level`. The text says
 * which key is needed and where the presented one came from; it never repeats a key.
 */
export function authFailure(
  level: AuthLevel,
  presented: PresentedKey | undefined,
  keys: HostKeys,
): string | undefined {
  if (isAuthorized(level, presented?.key, keys)) return undefined;
  const needed = level === 'admin' ? 'the master key' : 'the function key (or the master key)';
  if (!presented) {
    return `This route needs ${needed} in the x-functions-key header or the code query parameter; none was sent.`;
  }
  if (level === 'admin' && sameKey(presented.key, keys.functionKey)) {
    return `This route needs the master key; the ${presented.source} carries the function key.`;
  }
  return `This route needs ${needed}; the ${presented.source} does not carry a valid one.`;
}
