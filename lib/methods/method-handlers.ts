/**
 * HTTP handler for direct methods: `POST /devices/{deviceId}/methods/{methodName}`. The device's
 * own answer (whatever status it chose) is a 200 with `{status, payload}`; a device that is not
 * connected is a 404 `device-offline` problem, no answer in time a 504.
 */
import { deviceIdSyntax } from '../http/schemas';
import type { MethodService } from './method-service';
import { readJsonBody, routeId, validate } from '../http/request';
import { jsonResponse, withProblems, type HttpHandler } from '../http/respond';
import { InvokeMethodRequest, methodLimits, methodNameSyntax } from './schemas';

/** The body is the payload plus a small envelope (the two timeouts). */
const maxRequestBytes = methodLimits.payloadBytes + 1024;

export interface MethodHandlers {
  invoke: HttpHandler;
}

export function createMethodHandlers(services: () => { methods: MethodService }): MethodHandlers {
  return {
    invoke: withProblems(async (request) => {
      const deviceId = routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
      const methodName = routeId(request, 'methodName', methodNameSyntax, 'validationFailed');
      const body = validate(
        InvokeMethodRequest,
        await readJsonBody(request, maxRequestBytes),
        'method call',
      );
      const result = await services().methods.invoke(deviceId, methodName, body);
      return jsonResponse(200, result);
    }),
  };
}
