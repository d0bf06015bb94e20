/**
 * The telemetry read route's HTTP edge: validate, read, answer. Failures go through the one
 * HTTP error path (`withProblems`): storage failures become a 503, anything else a 500.
 */
import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';
import { ApiError, type ProblemIssue } from '../http/problem';
import { jsonResponse, withProblems, type HttpHandler } from '../http/respond';
import type { EntityStore } from '../storage/entity-store';
import { fromStorage } from './errors';
import { readTelemetry, TelemetryDeviceId, TelemetryQuery } from './read';

function issuesOf(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }) {
  return error.issues.map((issue): ProblemIssue => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

function deviceIdOf(request: HttpRequest): string {
  const deviceId = TelemetryDeviceId.safeParse(request.params.deviceId ?? '');
  if (deviceId.success) return deviceId.data;
  throw new ApiError(
    'invalidDeviceId',
    'The deviceId path segment is not a valid IoT Hub device id.',
    { errors: issuesOf(deviceId.error).map((i) => ({ ...i, path: 'deviceId' })) },
  );
}

function queryOf(request: HttpRequest): z.output<typeof TelemetryQuery> {
  const query = TelemetryQuery.safeParse({
    from: request.query.get('from') ?? undefined,
    to: request.query.get('to') ?? undefined,
    limit: request.query.get('limit') ?? undefined,
  });
  if (query.success) return query.data;
  const errors = issuesOf(query.error);
  throw new ApiError(
    'validationFailed',
    errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '),
    { errors },
  );
}

export function createTelemetryReadHandler(getStore: () => EntityStore): HttpHandler {
  return withProblems(async (request, context) => {
    const deviceId = deviceIdOf(request);
    const query = queryOf(request);
    const result = await fromStorage(
      'telemetry read',
      () =>
        readTelemetry(getStore(), {
          deviceId,
          fromMs: query.from,
          toMs: query.to,
          limit: query.limit,
        }),
      (text) => context.warn(text),
    );
    return jsonResponse(200, result);
  });
}
