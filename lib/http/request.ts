/**
 * Turning an HTTP request into validated values: body size limit, JSON parsing, schema checks.
 * Every failure is an ApiError with the exact status the API documents.
 */
import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';
import { ApiError, type ProblemIssue } from './problem';
import type { IdRule } from '../iothub/ids';
import { exceedsJsonDepth, maxJsonDepth } from './json-depth';

/** IoT Hub's cloud-to-device message limit; request bodies get the same bound. */
export const maxBodyBytes = 64 * 1024;

function issuesOf(error: z.ZodError): ProblemIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const message =
      issue.code === 'invalid_union' && issue.path.at(-1) === 'payload'
        ? 'Required: any JSON value'
        : issue.message;
    return { path, message };
  });
}

function summary(issues: readonly ProblemIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
    .join('; ');
}

/** Validate `value` or throw a 400 validation problem listing each issue. */
export function validate<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = issuesOf(result.error);
  // A bad device id is its own documented kind, wherever it appears.
  const kind = errors.every((e) => e.path === 'deviceId') ? 'invalidDeviceId' : 'validationFailed';
  throw new ApiError(kind, `Invalid ${where}: ${summary(errors)}`, { errors });
}

function bodyTooLarge(max: number): ApiError {
  return new ApiError('payloadTooLarge', `Request bodies are limited to ${max} bytes.`);
}

/**
 * The body's bytes, read chunk by chunk and abandoned at the first chunk past `max`: nothing
 * beyond the limit is copied or kept (and with a streamed body, nothing more is received).
 * The Functions host limits what reaches the app at all (`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`).
 */
async function readLimited(body: ReadableStream<Uint8Array> | null, max: number): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks, size);
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw bodyTooLarge(max);
    }
    chunks.push(value);
  }
}

/**
 * Read and parse a JSON body. An empty body counts as `{}` so that `POST /devices` works
 * without one. Content types other than JSON are refused; a missing one is tolerated (curl -d
 * sends form encoding by default, which is refused, but scripts often send none). Nesting beyond
 * `maxJsonDepth` is refused before any recursive code (validation) sees the value.
 */
export async function readJsonBody(
  request: HttpRequest,
  maxBytes: number = maxBodyBytes,
): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) throw bodyTooLarge(maxBytes);
  const bytes = await readLimited(request.body, maxBytes);
  if (bytes.length === 0) return {};
  const contentType = request.headers.get('content-type');
  if (contentType && !/^application\/([a-z0-9.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new ApiError('unsupportedMediaType', 'Send the body as Content-Type: application/json.');
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw new ApiError('invalidJson', 'The body could not be parsed as JSON.');
  }
  if (exceedsJsonDepth(value)) {
    throw new ApiError(
      'validationFailed',
      `The body nests arrays or objects more than ${maxJsonDepth} levels deep.`,
    );
  }
  return value;
}

/** The query string as a plain object (the last value wins for repeated keys). */
export function queryObject(request: HttpRequest): Record<string, string> {
  const query = Object.fromEntries(request.query.entries());
  // `code` carries the function key (the host's alternative to x-functions-key): it is the
  // host's, not the route's, so strict route schemas must not see it.
  delete query.code;
  return query;
}

/** Parse a route parameter that must be an IoT Hub id; a bad one is a 400, not a 404. */
export function routeId(
  request: HttpRequest,
  name: string,
  id: IdRule,
  kind: 'invalidDeviceId' | 'validationFailed',
): string {
  const value = request.params[name] ?? '';
  if (!id.pattern.test(value)) {
    throw new ApiError(kind, `The ${name} in the path must be ${id.rule}.`);
  }
  return value;
}
