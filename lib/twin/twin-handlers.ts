/**
 * HTTP handlers for device twins: `GET` and `PATCH /devices/{deviceId}/twin`. A patch must name
 * the etag it was based on (If-Match), so concurrent writers cannot overwrite each other blindly.
 */
import type { HttpRequest } from '@azure/functions';
import { deviceIdSyntax } from '../http/schemas';
import type { TwinService } from './twin-service';
import { ApiError } from '../http/problem';
import { readJsonBody, routeId, validate } from '../http/request';
import { jsonResponse, quoted, withProblems, type HttpHandler } from '../http/respond';
import { assertTwinSectionSize } from './limits';
import { UpdateTwinRequest } from './schemas';

function deviceIdParam(request: HttpRequest): string {
  return routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
}

function requiredIfMatch(request: HttpRequest): string {
  const ifMatch = request.headers.get('if-match')?.trim();
  if (!ifMatch) {
    throw new ApiError(
      'preconditionRequired',
      'Send If-Match with the etag from GET /devices/{deviceId}/twin, or * to apply the change whatever the twin holds.',
    );
  }
  return ifMatch;
}

export interface TwinHandlers {
  get: HttpHandler;
  update: HttpHandler;
}

export function createTwinHandlers(services: () => { twins: TwinService }): TwinHandlers {
  return {
    get: withProblems(async (request) => {
      const twin = await services().twins.get(deviceIdParam(request));
      return jsonResponse(200, twin, { ETag: quoted(twin.etag) });
    }),

    update: withProblems(async (request) => {
      const deviceId = deviceIdParam(request);
      const ifMatch = requiredIfMatch(request);
      const change = validate(UpdateTwinRequest, await readJsonBody(request), 'twin patch');
      if (change.tags) assertTwinSectionSize(change.tags, 'tags');
      if (change.desired) assertTwinSectionSize(change.desired, 'desired');
      const twin = await services().twins.update(deviceId, change, ifMatch);
      return jsonResponse(200, twin, { ETag: quoted(twin.etag) });
    }),
  };
}
