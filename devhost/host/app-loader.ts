/**
 * Finds and loads the app's entry files the way the worker does: `package.json` `main` is a glob
 * relative to the app folder (here `dist/{functions,simulator}/*.js`), every match is required.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { AppConfigError } from './app-config';

/** `a/{b,c}/d` → `a/b/d`, `a/c/d` (nested braces allowed). */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  let close = -1;
  const commas: number[] = [];
  for (let i = open; i < pattern.length; i += 1) {
    const ch = pattern[i];
    if (ch === '{') depth += 1;
    else if (ch === '}') {
      depth -= 1;
      if (depth === 0) {
        close = i;
        break;
      }
    } else if (ch === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [pattern];
  const bounds = [open, ...commas, close];
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const out: string[] = [];
  for (let i = 0; i < bounds.length - 1; i += 1) {
    const alternative = pattern.slice((bounds[i] ?? 0) + 1, bounds[i + 1]);
    out.push(...expandBraces(`${head}${alternative}${tail}`));
  }
  return out;
}

function segmentRegExp(segment: string): RegExp {
  const body = segment
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

function walk(dir: string, segments: readonly string[], out: string[]): void {
  const [segment, ...rest] = segments;
  if (segment === undefined) return;
  if (segment === '**') {
    walk(dir, rest, out);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name), segments, out);
    }
    return;
  }
  if (!/[*?]/.test(segment)) {
    const next = join(dir, segment);
    if (!existsSync(next)) return;
    if (rest.length === 0) {
      if (statSync(next).isFile()) out.push(next);
    } else if (statSync(next).isDirectory()) walk(next, rest, out);
    return;
  }
  const matcher = segmentRegExp(segment);
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (!matcher.test(entry.name)) continue;
    const next = join(dir, entry.name);
    if (rest.length === 0) {
      if (entry.isFile()) out.push(next);
    } else if (entry.isDirectory()) walk(next, rest, out);
  }
}

/** Files under `root` matching a glob with `*`, `?`, `**` and `{a,b}`, sorted, without duplicates. */
export function globFiles(root: string, pattern: string): string[] {
  const found: string[] = [];
  for (const expanded of expandBraces(pattern)) {
    walk(root, expanded.replace(/^\.\//, '').split('/').filter(Boolean), found);
  }
  return [...new Set(found)].sort();
}

export function readMainPattern(appDir: string): string {
  const file = join(appDir, 'package.json');
  if (!existsSync(file)) throw new AppConfigError(`no package.json in the app folder ${appDir}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    throw new AppConfigError(`package.json (${file}) is not valid JSON`);
  }
  const main = (parsed as { main?: unknown }).main;
  return typeof main === 'string' && main.length > 0 ? main : 'index.js';
}

/** Resolves the entry files; zero matches is an error, as in the worker. */
export function findEntryFiles(appDir: string): string[] {
  const pattern = readMainPattern(appDir);
  const files = globFiles(resolve(appDir), pattern);
  if (files.length === 0) {
    throw new AppConfigError(
      `package.json "main" (${pattern}) matches no file in ${appDir}; build the app first`,
    );
  }
  return files;
}

/** The host's own files: never forgotten (the core module must stay the one the host serves). */
const hostFolder = resolve(__dirname) + sep;

/**
 * Forgets modules loaded from the app folder so a new host in the same process loads them afresh;
 * not its packages, and not the host's own files when the host lives inside the app's folder.
 */
export function forgetAppModules(appDir: string): void {
  const root = resolve(appDir) + sep;
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(hostFolder)) continue;
    if (key.startsWith(root) && !relative(root, key).split(sep).includes('node_modules')) {
      delete require.cache[key];
    }
  }
}
