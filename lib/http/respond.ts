/**
 * Response helpers and the one wrapper every HTTP handler runs in: whatever a handler throws
 * becomes a problem response, and only a secret-free one-line description is logged.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { SettingsError } from '../settings';
import { hubErrorToApiError } from './hub-errors';
import { ApiError, problemResponse } from './problem';
import { describeError } from './redact';

export type HttpHandler = (
  request: HttpRequest,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

/** An etag as an HTTP header value (quoted). */
export function quoted(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** Map any thrown value to a problem response. Unknown failures are a bare 500. */
export function errorResponse(error: unknown, context: InvocationContext): HttpResponseInit {
  if (error instanceof SettingsError) {
    // The problems name settings and expectations only, never values.
    context.error(`App settings are invalid: ${error.problems.join('; ')}`);
    return problemResponse(
      new ApiError('internal', 'The service is misconfigured; see the function logs.'),
    );
  }
  const apiError = hubErrorToApiError(error, 'The device');
  if (apiError) {
    if (apiError.status >= 500) context.warn(`${apiError.kind}: ${describeError(error)}`);
    return problemResponse(apiError);
  }
  context.error(`Unexpected failure: ${describeError(error)}`);
  return problemResponse(new ApiError('internal', 'The request could not be completed.'));
}

/** Run `handler`, turning every failure into a problem response. */
export function withProblems(handler: HttpHandler): HttpHandler {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}
