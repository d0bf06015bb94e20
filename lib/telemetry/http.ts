/** The telemetry read route's HTTP edge: validate, read, map failures to problem+json. */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { ApiError, problemResponse, type ProblemIssue } from '../http/problem';
import { SettingsError } from '../settings';
import type { EntityStore } from '../storage/entity-store';
import { describeError, isStorageError } from './errors';
import { readTelemetry, TelemetryDeviceId, TelemetryQuery } from './read';

function issuesOf(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }) {
  return error.issues.map((issue): ProblemIssue => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

export function createTelemetryReadHandler(
  getStore: () => EntityStore,
): (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (request, context) => {
    const deviceId = TelemetryDeviceId.safeParse(request.params.deviceId ?? '');
    if (!deviceId.success) {
      return problemResponse(
        new ApiError(
          'invalidDeviceId',
          'The deviceId path segment is not a valid IoT Hub device id.',
          {
            errors: issuesOf(deviceId.error).map((i) => ({ ...i, path: 'deviceId' })),
          },
        ),
      );
    }
    const query = TelemetryQuery.safeParse({
      from: request.query.get('from') ?? undefined,
      to: request.query.get('to') ?? undefined,
      limit: request.query.get('limit') ?? undefined,
    });
    if (!query.success) {
      const errors = issuesOf(query.error);
      return problemResponse(
        new ApiError(
          'validationFailed',
          errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '),
          { errors },
        ),
      );
    }
    try {
      const result = await readTelemetry(getStore(), {
        deviceId: deviceId.data,
        fromMs: query.data.from,
        toMs: query.data.to,
        limit: query.data.limit,
      });
      return {
        status: 200,
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body: JSON.stringify(result),
      };
    } catch (error) {
      if (error instanceof SettingsError) {
        // The problems name settings and expectations, never values.
        context.error(`App settings are invalid: ${error.problems.join('; ')}`);
        return problemResponse(
          new ApiError('internal', 'The service is misconfigured; see the function logs.'),
        );
      }
      if (isStorageError(error)) {
        context.warn(`telemetry read failed: ${describeError(error)}`);
        return problemResponse(
          new ApiError('storageUnavailable', 'The telemetry store could not be read; retry later.'),
        );
      }
      context.error(`telemetry read failed: ${describeError(error)}`);
      return problemResponse(new ApiError('internal', 'The request could not be completed.'));
    }
  };
}
