/**
 * Turns an event body, in whatever form the trigger delivered it, into a JSON value.
 *
 * Forms: bytes (`dataType: 'binary'` gives Buffers; ArrayBuffer and typed arrays accepted too),
 * text (`dataType: 'string'`), or a value the library already JSON-parsed (the default dataType).
 * The content encoding (`$.ce` on the device) names the character set (`utf-8`, `utf-16`) or
 * `base64`; without it, a body that is not JSON but has the shape of base64 is tried as base64.
 */
import { isUtf8 } from 'node:buffer';

export type DecodeFailureReason =
  'empty-body' | 'invalid-base64' | 'invalid-text' | 'not-json' | 'unsupported-encoding';

export type DecodeResult =
  | { ok: true; value: unknown; base64: boolean }
  | { ok: false; reason: DecodeFailureReason; detail: string };

type Charset = 'utf8' | 'utf16le';

/** Bytes of a body in any binary form, or undefined when it is not binary. */
export function bodyBytes(body: unknown): Buffer | undefined {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // A Buffer that went through JSON.stringify on the way.
  if (
    typeof body === 'object' &&
    body !== null &&
    (body as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((body as { data?: unknown }).data)
  ) {
    const data = (body as { data: unknown[] }).data;
    if (data.every((b) => typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 255)) {
      return Buffer.from(data as number[]);
    }
  }
  return undefined;
}

/** The raw body as bytes, whatever its form (for dead letters). */
export function rawBody(body: unknown): Buffer {
  const bytes = bodyBytes(body);
  if (bytes) return bytes;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body === undefined) return Buffer.alloc(0);
  try {
    return Buffer.from(JSON.stringify(body) ?? '', 'utf8');
  } catch {
    return Buffer.alloc(0);
  }
}

function charsetOf(name: string | undefined): Charset | undefined {
  if (name === undefined || name === 'utf-8') return 'utf8';
  switch (name.toLowerCase().replace(/^"|"$/g, '')) {
    case '':
    case 'utf-8':
    case 'utf8':
    case 'us-ascii':
    case 'ascii':
      return 'utf8';
    case 'utf-16':
    case 'utf-16le':
    case 'utf16le':
    case 'ucs-2':
    case 'ucs2':
      return 'utf16le';
    default:
      return undefined;
  }
}

function contentTypeCharset(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const match = /;\s*charset\s*=\s*("?[\w.:-]+"?)/i.exec(contentType);
  return match?.[1];
}

const strictBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const lenientBase64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Decodes base64 text; undefined when it is not base64. */
function fromBase64(text: string, lenient: boolean): Buffer | undefined {
  const compact = lenient ? text.replace(/\s+/g, '') : text;
  if (compact.length === 0) return undefined;
  if (!(lenient ? lenientBase64 : strictBase64).test(compact)) return undefined;
  if (lenient && compact.replace(/=+$/, '').length % 4 === 1) return undefined;
  return Buffer.from(compact, lenient && /[-_]/.test(compact) ? 'base64url' : 'base64');
}

function textOf(bytes: Buffer, charset: Charset): string | undefined {
  if (charset === 'utf8') {
    // Invalid sequences decode to U+FFFD; only then is the (second) validating pass needed.
    const text = bytes.toString('utf8');
    return text.includes('\uFFFD') && !isUtf8(bytes) ? undefined : text;
  }
  if (bytes.byteLength % 2 !== 0) return undefined;
  return bytes.toString('utf16le');
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Marks "not JSON" without allocating a result object per event. */
const notJson: unique symbol = Symbol('not JSON');

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return notJson;
  }
}

/** Looks like base64 of a JSON object or array: only then is the shape taken as a hint. */
function base64Json(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.length < 4 || !strictBase64.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed, 'base64');
  const decoded = textOf(bytes, 'utf8');
  if (decoded === undefined) return undefined;
  const inner = stripBom(decoded).trimStart();
  if (!inner.startsWith('{') && !inner.startsWith('[')) return undefined;
  const parsed = tryJson(inner);
  return parsed === notJson ? undefined : parsed;
}

function parseText(text: string, explicitBase64: boolean): DecodeResult {
  const clean = stripBom(text);
  const parsed = tryJson(clean);
  if (parsed !== notJson) {
    // A JSON string holding base64 JSON (a producer that base64-encoded and then JSON-encoded).
    if (typeof parsed === 'string') {
      const inner = base64Json(parsed);
      if (inner !== undefined) return { ok: true, value: inner, base64: true };
    }
    return { ok: true, value: parsed, base64: explicitBase64 };
  }
  if (clean.trim() === '') return { ok: false, reason: 'empty-body', detail: 'the body is empty' };
  if (!explicitBase64) {
    const inner = base64Json(clean);
    if (inner !== undefined) return { ok: true, value: inner, base64: true };
  }
  return { ok: false, reason: 'not-json', detail: 'the body is not JSON' };
}

/**
 * Decodes one body. `contentType` may carry a charset; `contentEncoding` is a charset or
 * `base64`.
 */
export function decodeBody(
  body: unknown,
  contentType: string | undefined,
  contentEncoding: string | undefined,
): DecodeResult {
  // The device SDKs send exactly `utf-8`; skip normalising it.
  const encoding =
    contentEncoding === 'utf-8'
      ? contentEncoding
      : contentEncoding?.trim().toLowerCase() || undefined;
  const isBase64 = encoding === 'base64';
  const charset = charsetOf(
    isBase64 ? contentTypeCharset(contentType) : (encoding ?? contentTypeCharset(contentType)),
  );
  if (charset === undefined) {
    return {
      ok: false,
      reason: 'unsupported-encoding',
      detail: 'the content encoding is not utf-8, utf-16 or base64',
    };
  }

  let bytes = bodyBytes(body);
  if (bytes === undefined && typeof body !== 'string') {
    // Already parsed by the library (default dataType); a string value may still be base64.
    if (body === undefined || body === null) {
      return { ok: false, reason: 'empty-body', detail: 'the body is empty' };
    }
    return { ok: true, value: body, base64: false };
  }

  let text: string;
  if (bytes !== undefined) {
    if (bytes.byteLength === 0)
      return { ok: false, reason: 'empty-body', detail: 'the body is empty' };
    if (isBase64) {
      const decoded = fromBase64(bytes.toString('latin1'), true);
      if (decoded === undefined) {
        return { ok: false, reason: 'invalid-base64', detail: 'the body is not valid base64' };
      }
      bytes = decoded;
    }
    const decodedText = textOf(bytes, charset);
    if (decodedText === undefined) {
      return {
        ok: false,
        reason: 'invalid-text',
        detail: `the body is not valid ${charset === 'utf8' ? 'UTF-8' : 'UTF-16'} text`,
      };
    }
    text = decodedText;
  } else {
    text = body as string;
    if (isBase64) {
      const decoded = fromBase64(text, true);
      if (decoded === undefined) {
        return { ok: false, reason: 'invalid-base64', detail: 'the body is not valid base64' };
      }
      const decodedText = textOf(decoded, charset);
      if (decodedText === undefined) {
        return { ok: false, reason: 'invalid-text', detail: 'the decoded body is not valid text' };
      }
      text = decodedText;
    }
  }
  return parseText(text, isBase64);
}
