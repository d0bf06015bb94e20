/**
 * HTTP route templates as the Functions host reads them (ASP.NET syntax): literal segments,
 * `{name}`, `{name?}`, `{name=default}`, `{*rest}` and constraints such as `{id:int}`,
 * `{name:alpha:maxlength(8)}` or `{code:regex(^[a-z]+$)}`. Literals match case-insensitively;
 * more specific routes win over parameters and catch-alls.
 */

export class RouteTemplateError extends Error {
  override name = 'RouteTemplateError';
}

interface Parameter {
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue?: string;
  constraints: ((value: string) => boolean)[];
}

type Part = { kind: 'literal'; text: string } | { kind: 'param'; param: Parameter };

export interface CompiledRoute {
  template: string;
  /** Lower is more specific; routes are tried in this order. */
  precedence: number[];
  match(path: string): Record<string, string> | undefined;
}

const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const guidPattern = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;

function splitArgs(text: string): string[] {
  return text.split(',').map((s) => s.trim());
}

function numberArg(text: string | undefined, constraint: string): number {
  const n = Number(text);
  if (text === undefined || text === '' || Number.isNaN(n)) {
    throw new RouteTemplateError(`constraint "${constraint}" needs a number`);
  }
  return n;
}

function compileConstraint(spec: string): (value: string) => boolean {
  const m = /^([a-zA-Z]+)(?:\((.*)\))?$/s.exec(spec);
  if (!m) throw new RouteTemplateError(`unknown route constraint "${spec}"`);
  const name = (m[1] ?? '').toLowerCase();
  const arg = m[2];
  switch (name) {
    case 'int':
      return (v) =>
        /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 2147483648 && Number(v) <= 2147483647;
    case 'long':
      return (v) =>
        /^-?\d+$/.test(v) &&
        BigInt(v) <= 9223372036854775807n &&
        BigInt(v) >= -9223372036854775808n;
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'decimal':
    case 'double':
    case 'float':
      return (v) => numberPattern.test(v);
    case 'guid':
      return (v) => guidPattern.test(v);
    case 'datetime':
      return (v) => !Number.isNaN(Date.parse(v));
    case 'alpha':
      return (v) => /^[a-z]+$/i.test(v);
    case 'minlength': {
      const n = numberArg(arg, spec);
      return (v) => v.length >= n;
    }
    case 'maxlength': {
      const n = numberArg(arg, spec);
      return (v) => v.length <= n;
    }
    case 'length': {
      const [a, b] = splitArgs(arg ?? '');
      const min = numberArg(a, spec);
      const max = b === undefined ? min : numberArg(b, spec);
      return (v) => v.length >= min && v.length <= max;
    }
    case 'min': {
      const n = numberArg(arg, spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= n;
    }
    case 'max': {
      const n = numberArg(arg, spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) <= n;
    }
    case 'range': {
      const [a, b] = splitArgs(arg ?? '');
      const min = numberArg(a, spec);
      const max = numberArg(b, spec);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= min && Number(v) <= max;
    }
    case 'regex': {
      if (!arg) throw new RouteTemplateError(`constraint "${spec}" needs a pattern`);
      let pattern: RegExp;
      try {
        pattern = new RegExp(arg, 'i');
      } catch {
        throw new RouteTemplateError(`constraint "${spec}" has an invalid pattern`);
      }
      return (v) => pattern.test(v);
    }
    default:
      throw new RouteTemplateError(`unknown route constraint "${spec}"`);
  }
}

/** Splits `name:c1:c2(arg:with:colons)` on the colons outside parentheses. */
function splitConstraints(body: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of body) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ':' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out;
}

function parseParameter(body: string, template: string): Parameter {
  let text = body.trim();
  const catchAll = text.startsWith('*');
  if (catchAll) text = text.replace(/^\*+/, '');
  const [head = '', ...constraintSpecs] = splitConstraints(text);
  let name = head;
  let defaultValue: string | undefined;
  let optional = false;
  const eq = name.indexOf('=');
  if (eq >= 0) {
    defaultValue = name.slice(eq + 1);
    name = name.slice(0, eq);
  }
  let lastSpec = constraintSpecs.at(-1);
  if (lastSpec !== undefined && lastSpec.includes('=') && !lastSpec.includes('(')) {
    const [spec = '', value] = lastSpec.split('=');
    constraintSpecs[constraintSpecs.length - 1] = spec;
    defaultValue = value;
    lastSpec = spec;
  }
  if (name.endsWith('?')) {
    optional = true;
    name = name.slice(0, -1);
  } else if (lastSpec?.endsWith('?')) {
    optional = true;
    constraintSpecs[constraintSpecs.length - 1] = lastSpec.slice(0, -1);
  }
  if (!/^[A-Za-z_][\w]*$/.test(name)) {
    throw new RouteTemplateError(`route "${template}": invalid parameter name "${name}"`);
  }
  return {
    name,
    optional: optional || catchAll,
    catchAll,
    defaultValue,
    // Braces inside a template are escaped by doubling them (`{{`, `}}`).
    constraints: constraintSpecs.map((spec) =>
      compileConstraint(spec.replace(/\{\{/g, '{').replace(/\}\}/g, '}')),
    ),
  };
}

function parseSegment(segment: string, template: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < segment.length) {
    const open = segment.indexOf('{', i);
    if (open < 0) {
      parts.push({ kind: 'literal', text: segment.slice(i) });
      break;
    }
    if (open > i) parts.push({ kind: 'literal', text: segment.slice(i, open) });
    let depth = 0;
    let close = -1;
    for (let j = open; j < segment.length; j += 1) {
      if (segment[j] === '{') depth += 1;
      if (segment[j] === '}') {
        depth -= 1;
        if (depth === 0) {
          close = j;
          break;
        }
      }
    }
    if (close < 0) throw new RouteTemplateError(`route "${template}": unbalanced "{"`);
    parts.push({ kind: 'param', param: parseParameter(segment.slice(open + 1, close), template) });
    i = close + 1;
  }
  return parts;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function segmentPrecedence(parts: Part[]): number {
  if (parts.length === 1 && parts[0]?.kind === 'literal') return 1;
  if (parts.length > 1) return 2;
  const param = parts[0]?.kind === 'param' ? parts[0].param : undefined;
  if (!param) return 1;
  if (param.catchAll) return 5;
  if (param.constraints.length > 0) return param.optional ? 4 : 3;
  return param.optional ? 4.5 : 3.5;
}

export function compileRoute(template: string): CompiledRoute {
  const segments = template
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter((s) => s.length > 0);
  const params: Parameter[] = [];
  let pattern = '^';
  const precedence: number[] = [];
  segments.forEach((segment, index) => {
    const parts = parseSegment(segment, template);
    precedence.push(segmentPrecedence(parts));
    const single = parts.length === 1 && parts[0]?.kind === 'param' ? parts[0].param : undefined;
    if (single?.catchAll && index !== segments.length - 1) {
      throw new RouteTemplateError(
        `route "${template}": a catch-all parameter must be the last segment`,
      );
    }
    let body = '';
    for (const part of parts) {
      if (part.kind === 'literal') body += escapeRegExp(part.text);
      else {
        params.push(part.param);
        body += part.param.catchAll ? '(.*)' : parts.length > 1 ? '([^/]+?)' : '([^/]+)';
      }
    }
    // An optional or catch-all last segment may be absent together with its slash.
    if (single && (single.optional || single.catchAll || single.defaultValue !== undefined))
      pattern += `(?:/${body})?`;
    else pattern += `/${body}`;
  });
  pattern += '/?$';
  const regex = new RegExp(pattern, 'i');
  return {
    template,
    precedence,
    match(path: string) {
      const normalized = path === '' ? '/' : path;
      const m = regex.exec(normalized === '/' && segments.length > 0 ? '' : normalized);
      if (!m) return undefined;
      const values: Record<string, string> = {};
      for (let i = 0; i < params.length; i += 1) {
        const param = params[i] as Parameter;
        const raw = m[i + 1];
        if (raw === undefined || raw === '') {
          if (!param.optional && param.defaultValue === undefined) return undefined;
          if (param.defaultValue !== undefined) values[param.name] = param.defaultValue;
          continue;
        }
        let value: string;
        try {
          value = param.catchAll
            ? raw.split('/').map(decodeURIComponent).join('/')
            : decodeURIComponent(raw);
        } catch {
          return undefined;
        }
        if (!param.constraints.every((check) => check(value))) return undefined;
        values[param.name] = value;
      }
      return values;
    },
  };
}

/** Orders routes most specific first (literal segments before parameters before catch-alls). */
export function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < length; i += 1) {
    const pa = a.precedence[i] ?? 0;
    const pb = b.precedence[i] ?? 0;
    if (pa !== pb) return pa - pb;
  }
  return 0;
}
