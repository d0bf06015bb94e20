/**
 * Turning an HTTP request into validated values: body size limit, JSON parsing, schema checks.
 * Every failure is an ApiError with the exact status the API documents.
 */
import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';
import { ApiError, type ProblemIssue } from './problem';
import type { IdRule } from '../iothub/ids';

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

/**
 * Read and parse a JSON body. An empty body counts as `{}` so that `POST /devices` works
 * without one. Content types other than JSON are refused; a missing one is tolerated (curl -d
 * sends form encoding by default, which is refused, but scripts often send none).
 */
export async function readJsonBody(
  request: HttpRequest,
  /** A route whose IoT Hub limit is larger (direct methods: 128 KB) passes its own. */
  limitBytes = maxBodyBytes,
): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (Number.isFinite(declared) && declared > limitBytes) {
    throw new ApiError('payloadTooLarge', `Request bodies are limited to ${limitBytes} bytes.`);
  }
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > limitBytes) {
    throw new ApiError('payloadTooLarge', `Request bodies are limited to ${limitBytes} bytes.`);
  }
  if (bytes.length === 0) return {};
  const contentType = request.headers.get('content-type');
  if (contentType && !/^application\/([a-z0-9.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new ApiError('unsupportedMediaType', 'Send the body as Content-Type: application/json.');
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw new ApiError('invalidJson', 'The body could not be parsed as JSON.');
  }
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
