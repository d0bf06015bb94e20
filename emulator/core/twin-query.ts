/**
 * The part of IoT Hub's query language the local hub answers, over twin documents:
 *   SELECT * | COUNT() [AS name] | path [AS name], … FROM devices
 *   [WHERE condition]
 * where a condition combines `path op literal` (op: = != <> < > <= >=; literals: 'text' with ''
 * for a quote, numbers, true, false, null), IS_DEFINED(path), NOT, AND, OR and parentheses, and a
 * path is a dotted name such as `tags.location`, `properties.reported.z`, `deviceId` or
 * `devices.status`. A projection returns each path's value under its last name (or its alias).
 * Anything else (other collections, GROUP BY, functions) answers 501 rather than a guess; a text
 * that is not a query answers 400. Results are ordered by device id and paged after the last id.
 */
import type { QueryPage } from './contracts';
import { HubError } from './contracts';
import type { JsonObject } from './twin-json';

type Literal = string | number | boolean | null;
type Operand = { path: string[] } | { literal: Literal };
type Condition =
  | { op: 'and' | 'or'; left: Condition; right: Condition }
  | { op: 'not'; operand: Condition }
  | { op: 'defined'; path: string[] }
  | { op: 'compare'; comparison: string; left: Operand; right: Operand };
type Selection =
  | { kind: 'all' }
  | { kind: 'count'; alias: string }
  | { kind: 'fields'; fields: { path: string[]; alias: string }[] };

interface TwinQuery {
  selection: Selection;
  where?: Condition;
}

const tokenPattern =
  /\s*(?:('(?:[^']|'')*')|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|([A-Za-z_$][\w$]*)|(<>|!=|<=|>=|[*,().=<>;]))/y;

type Token = { kind: 'string' | 'number' | 'word' | 'punct'; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  tokenPattern.lastIndex = 0;
  while (tokenPattern.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(tokenPattern.lastIndex))) break;
    const m = tokenPattern.exec(text);
    if (!m) throw syntaxError(`unexpected character at ${tokenPattern.lastIndex}`);
    if (m[1] !== undefined)
      tokens.push({ kind: 'string', text: m[1].slice(1, -1).replace(/''/g, "'") });
    else if (m[2] !== undefined) tokens.push({ kind: 'number', text: m[2] });
    else if (m[3] !== undefined) tokens.push({ kind: 'word', text: m[3] });
    else tokens.push({ kind: 'punct', text: m[4] ?? '' });
  }
  return tokens;
}

function syntaxError(detail: string): HubError {
  return new HubError('ArgumentInvalid', `the query is not valid: ${detail}`);
}

function unsupported(detail: string): HubError {
  return new HubError(
    'NotImplemented',
    `the local IoT Hub does not support ${detail} (it answers SELECT */COUNT()/paths FROM devices [WHERE …])`,
  );
}

class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): TwinQuery {
    this.expectWord('select');
    const selection = this.selection();
    this.expectWord('from');
    const from = this.next();
    if (from?.kind !== 'word' || from.text.toLowerCase() !== 'devices' || this.peekText() === '.') {
      throw unsupported(`FROM ${from?.text ?? ''}${this.peekText() === '.' ? '.…' : ''}`);
    }
    let where: Condition | undefined;
    if (this.peekWord('where')) {
      this.at++;
      where = this.or();
    }
    if (this.peekText() === ';') this.at++;
    const rest = this.tokens[this.at];
    if (rest)
      throw this.peekWord('group')
        ? unsupported('GROUP BY')
        : syntaxError(`unexpected '${rest.text}'`);
    return where ? { selection, where } : { selection };
  }

  private selection(): Selection {
    if (this.peekText() === '*') {
      this.at++;
      return { kind: 'all' };
    }
    if (this.peekWord('count')) {
      this.at++;
      this.expect('(');
      this.expect(')');
      return { kind: 'count', alias: this.alias() ?? '$1' };
    }
    const fields: { path: string[]; alias: string }[] = [];
    do {
      if (fields.length > 0) this.at++;
      const path = this.path();
      fields.push({ path, alias: this.alias() ?? path[path.length - 1] ?? '' });
    } while (this.peekText() === ',');
    return { kind: 'fields', fields };
  }

  private alias(): string | undefined {
    if (!this.peekWord('as')) return undefined;
    this.at++;
    const name = this.next();
    if (name?.kind !== 'word') throw syntaxError('AS needs a name');
    return name.text;
  }

  private or(): Condition {
    let left = this.and();
    while (this.peekWord('or')) {
      this.at++;
      left = { op: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): Condition {
    let left = this.unary();
    while (this.peekWord('and')) {
      this.at++;
      left = { op: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): Condition {
    if (this.peekWord('not')) {
      this.at++;
      return { op: 'not', operand: this.unary() };
    }
    if (this.peekText() === '(') {
      this.at++;
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    if (this.peekWord('is_defined')) {
      this.at++;
      this.expect('(');
      const path = this.path();
      this.expect(')');
      return { op: 'defined', path };
    }
    const left = this.operand();
    const op = this.next();
    if (op?.kind !== 'punct' || !['=', '!=', '<>', '<', '>', '<=', '>='].includes(op.text)) {
      if (op?.kind === 'word') throw unsupported(`the operator ${op.text.toUpperCase()}`);
      throw syntaxError('expected a comparison');
    }
    return { op: 'compare', comparison: op.text, left, right: this.operand() };
  }

  private operand(): Operand {
    const token = this.tokens[this.at];
    if (token?.kind === 'string') return (this.at++, { literal: token.text });
    if (token?.kind === 'number') return (this.at++, { literal: Number(token.text) });
    if (token?.kind === 'word') {
      const lower = token.text.toLowerCase();
      if (lower === 'true' || lower === 'false') return (this.at++, { literal: lower === 'true' });
      if (lower === 'null') return (this.at++, { literal: null });
      if (this.tokens[this.at + 1]?.text === '(') throw unsupported(`the function ${token.text}`);
      return { path: this.path() };
    }
    throw syntaxError('expected a property path or a value');
  }

  private path(): string[] {
    const parts: string[] = [];
    do {
      if (parts.length > 0) this.at++;
      const name = this.next();
      if (name?.kind !== 'word') throw syntaxError('expected a property name');
      parts.push(name.text);
    } while (this.peekText() === '.');
    return parts;
  }

  private next(): Token | undefined {
    return this.tokens[this.at++];
  }

  private peekText(): string | undefined {
    return this.tokens[this.at]?.text;
  }

  private peekWord(word: string): boolean {
    const token = this.tokens[this.at];
    return token?.kind === 'word' && token.text.toLowerCase() === word;
  }

  private expect(text: string): void {
    if (this.next()?.text !== text) throw syntaxError(`expected '${text}'`);
  }

  private expectWord(word: string): void {
    const token = this.next();
    if (token?.kind !== 'word' || token.text.toLowerCase() !== word) {
      throw syntaxError(`expected ${word.toUpperCase()}`);
    }
  }
}

export function parseTwinQuery(text: unknown): TwinQuery {
  if (typeof text !== 'string' || !/^\s*select\s/i.test(text)) {
    throw new HubError('ArgumentInvalid', 'the body must be {"query": "SELECT ..."}');
  }
  return new Parser(tokenize(text)).parse();
}

/** A path's value in a twin document; the first name matches case-insensitively, as IoT Hub's do. */
function resolve(document: JsonObject, path: readonly string[]): unknown {
  const parts = path.length > 1 && path[0]?.toLowerCase() === 'devices' ? path.slice(1) : path;
  let value: unknown = document;
  parts.forEach((part, i) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      value = undefined;
      return;
    }
    const object = value as JsonObject;
    const key =
      i === 0
        ? (Object.keys(object).find((k) => k.toLowerCase() === part.toLowerCase()) ?? part)
        : part;
    value = Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
  });
  return value;
}

function compare(comparison: string, left: unknown, right: unknown): boolean {
  if (left === undefined || right === undefined) return false;
  if (comparison === '=') return left === right;
  if (comparison === '!=' || comparison === '<>') return left !== right;
  const comparable =
    (typeof left === 'number' && typeof right === 'number') ||
    (typeof left === 'string' && typeof right === 'string');
  if (!comparable) return false;
  if (comparison === '<') return left < right;
  if (comparison === '>') return left > right;
  if (comparison === '<=') return left <= right;
  return left >= right;
}

function matches(condition: Condition, document: JsonObject): boolean {
  const value = (operand: Operand): unknown =>
    'literal' in operand ? operand.literal : resolve(document, operand.path);
  switch (condition.op) {
    case 'and':
      return matches(condition.left, document) && matches(condition.right, document);
    case 'or':
      return matches(condition.left, document) || matches(condition.right, document);
    case 'not':
      return !matches(condition.operand, document);
    case 'defined':
      return resolve(document, condition.path) !== undefined;
    case 'compare':
      return compare(condition.comparison, value(condition.left), value(condition.right));
  }
}

function project(selection: Selection, document: JsonObject): JsonObject {
  if (selection.kind !== 'fields') return document;
  const row: JsonObject = {};
  for (const { path, alias } of selection.fields) {
    const value = resolve(document, path);
    if (value !== undefined) row[alias] = value;
  }
  return row;
}

function encodeContinuation(afterDeviceId: string): string {
  return Buffer.from(JSON.stringify({ after: afterDeviceId }), 'utf8').toString('base64url');
}

function decodeContinuation(token: string): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    const after = (value as { after?: unknown } | null)?.after;
    if (typeof after === 'string') return after;
  } catch {
    // fall through
  }
  throw new HubError('ArgumentInvalid', 'the x-ms-continuation token is not valid');
}

/** IoT Hub's page size for a query (`x-ms-max-item-count`): default and bound. */
export const queryPageSize = { default: 100, max: 10_000 } as const;

/** The requested page size, checked against IoT Hub's bounds; none asked for means the default. */
export function checkedPageSize(requested: number | undefined): number {
  if (requested === undefined) return queryPageSize.default;
  if (!Number.isInteger(requested) || requested < 1 || requested > queryPageSize.max) {
    throw new HubError('ArgumentInvalid', `x-ms-max-item-count must be 1-${queryPageSize.max}`);
  }
  return requested;
}

/**
 * Runs a query over twin documents sorted by device id; one page of at most `requestedPageSize`
 * rows (checked first, as IoT Hub rejects a bad page size before it reads the query).
 */
export function runTwinQuery(
  text: unknown,
  documents: readonly JsonObject[],
  requestedPageSize?: number,
  continuation?: string,
): QueryPage {
  const pageSize = checkedPageSize(requestedPageSize);
  const query = parseTwinQuery(text);
  const matching = documents.filter((doc) => !query.where || matches(query.where, doc));
  if (query.selection.kind === 'count') {
    return { items: [{ [query.selection.alias]: matching.length }], itemType: 'JSON' };
  }
  const after = continuation ? decodeContinuation(continuation) : undefined;
  const remaining = matching.filter((doc) => after === undefined || String(doc.deviceId) > after);
  const page = remaining.slice(0, pageSize);
  const last = page[page.length - 1];
  return {
    items: page.map((doc) => project(query.selection, doc)),
    itemType: query.selection.kind === 'all' ? 'Twin' : 'JSON',
    // Only when more pages exist: an empty continuation header makes the SDK loop forever.
    ...(remaining.length > page.length && last
      ? { continuation: encodeContinuation(String(last.deviceId)) }
      : {}),
  };
}
