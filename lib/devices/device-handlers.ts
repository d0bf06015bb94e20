/**
 * HTTP handlers for device identities: parse and validate, call the device service, shape the
 * response. Every failure becomes a problem response through `withProblems`.
 */
import type { HttpRequest } from '@azure/functions';
import { queryObject, readJsonBody, routeId, validate } from '../http/request';
import { jsonResponse, quoted, withProblems, type HttpHandler } from '../http/respond';
import { invalidContinuationToken } from './continuation-token';
import { ApiError } from '../http/problem';
import type { DeviceService } from './device-service';
import {
  CreateDeviceRequest,
  ListDevicesQuery,
  UpdateDeviceRequest,
  defaultPageSize,
} from './schemas';
import { deviceIdSyntax } from '../http/schemas';

function isHubRejection(error: unknown): boolean {
  return error instanceof ApiError && error.kind === 'hubRejectedRequest';
}

function deviceIdParam(request: HttpRequest): string {
  return routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
}

/** `<request path>/<id>`: where the new resource lives, whatever prefix the host uses. */
function childUrl(request: HttpRequest, id: string): string {
  const url = new URL(request.url);
  return `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
}

export interface DeviceHandlers {
  create: HttpHandler;
  list: HttpHandler;
  get: HttpHandler;
  update: HttpHandler;
  remove: HttpHandler;
}

/** What the device handlers need from the composition root (`lib/app/services.ts`). */
export interface DeviceHandlerServices {
  devices: DeviceService;
}

export function createDeviceHandlers(services: () => DeviceHandlerServices): DeviceHandlers {
  return {
    create: withProblems(async (request) => {
      const body = validate(CreateDeviceRequest, await readJsonBody(request), 'device');
      const device = await services().devices.create(body);
      return jsonResponse(201, device, {
        Location: childUrl(request, device.deviceId),
        ETag: quoted(device.etag),
        // The only response with keys: keep it out of every cache.
        'Cache-Control': 'no-store',
      });
    }),

    list: withProblems(async (request) => {
      const query = validate(ListDevicesQuery, queryObject(request), 'query string');
      const page = await services()
        .devices.list(query.pageSize ?? defaultPageSize, query.continuationToken)
        .catch((error: unknown) => {
          // A well-formed token the hub refuses was not issued by this API (or has gone stale).
          if (query.continuationToken !== undefined && isHubRejection(error))
            throw invalidContinuationToken();
          throw error;
        });
      return jsonResponse(200, page);
    }),

    get: withProblems(async (request) => {
      const device = await services().devices.get(deviceIdParam(request));
      return jsonResponse(200, device, { ETag: quoted(device.etag) });
    }),

    update: withProblems(async (request) => {
      const deviceId = deviceIdParam(request);
      const change = validate(UpdateDeviceRequest, await readJsonBody(request), 'device change');
      const device = await services().devices.update(
        deviceId,
        change,
        request.headers.get('if-match') ?? undefined,
      );
      return jsonResponse(200, device, { ETag: quoted(device.etag) });
    }),

    remove: withProblems(async (request) => {
      await services().devices.delete(deviceIdParam(request));
      return { status: 204 };
    }),
  };
}
