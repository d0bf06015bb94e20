/**
 * Twins and direct methods over the registry's REST surface, as `azure-iothub` calls them:
 * `GET /twins/{id}`, `PATCH /twins/{id}` (merge tags and desired; `If-Match`), `PUT /twins/{id}`
 * (replace them) and `POST /twins/{id}/methods`. Each handler only translates between HTTP and the
 * core's twins and methods.
 */
import type { IotHubCore, MethodInvocation, TwinRecord, TwinUpdate } from '../core/contracts';
import { HubError } from '../core/contracts';
import { ifMatchOf, route, type Response, type Route, type RouteInput } from './route';

/** IoT Hub's bounds for a direct method call's timeouts, in seconds. */
export const methodTimeouts = {
  response: { min: 5, max: 300, default: 30 },
  connect: { min: 0, max: 300, default: 0 },
} as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): HubError {
  return new HubError('ArgumentInvalid', message);
}

/** Tags and desired properties from a twin body; reported properties belong to the device. */
function twinUpdateOf(body: unknown): TwinUpdate {
  if (!isObject(body)) throw invalid('the request body must be a twin JSON object');
  const update: TwinUpdate = {};
  if (body.tags !== undefined && body.tags !== null) {
    if (!isObject(body.tags)) throw invalid('tags must be a JSON object');
    update.tags = body.tags;
  }
  const properties = body.properties;
  if (properties !== undefined && properties !== null) {
    if (!isObject(properties)) throw invalid('properties must be a JSON object');
    if (properties.reported !== undefined) {
      throw invalid('properties.reported are read-only for the service; the device sets them');
    }
    if (properties.desired !== undefined && properties.desired !== null) {
      if (!isObject(properties.desired)) throw invalid('properties.desired must be a JSON object');
      update.desired = properties.desired;
    }
  }
  return update;
}

function seconds(
  value: unknown,
  field: string,
  bounds: { min: number; max: number; default: number },
): number {
  if (value === undefined || value === null) return bounds.default;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < bounds.min ||
    value > bounds.max
  ) {
    throw invalid(`${field} must be an integer from ${bounds.min} to ${bounds.max}`);
  }
  return value;
}

export function methodInvocationOf(body: unknown): MethodInvocation {
  if (!isObject(body)) throw invalid('the request body must be a method call JSON object');
  const { methodName } = body;
  if (typeof methodName !== 'string' || methodName === '' || methodName.length > 100) {
    throw invalid('methodName must be a string of 1-100 characters');
  }
  // Method names travel as one MQTT topic level.
  if (/[/#+]/.test(methodName) || methodName.includes('\u0000'))
    throw invalid("methodName must not contain '/', '#' or '+'");
  const response = seconds(
    body.responseTimeoutInSeconds,
    'responseTimeoutInSeconds',
    methodTimeouts.response,
  );
  const connect = seconds(
    body.connectTimeoutInSeconds,
    'connectTimeoutInSeconds',
    methodTimeouts.connect,
  );
  return {
    methodName,
    payload: body.payload ?? null,
    responseTimeoutMs: response * 1000,
    connectTimeoutMs: connect * 1000,
  };
}

function requireTwin(core: IotHubCore, deviceId: string): TwinRecord {
  const twin = core.twins.get(deviceId);
  if (!twin) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
  return twin;
}

function twinResponse(core: IotHubCore, twin: TwinRecord): Response {
  const document = core.twins.document(twin.deviceId);
  if (!document) throw new HubError('DeviceNotFound', `Device ${twin.deviceId} not found`);
  return { status: 200, body: document, headers: { etag: `"${String(document.etag)}"` } };
}

function getTwin({ core, deviceId }: RouteInput): Response {
  return twinResponse(core, requireTwin(core, deviceId));
}

/** PATCH: merges tags and desired properties. */
async function patchTwin({ core, request, deviceId }: RouteInput): Promise<Response> {
  const update = twinUpdateOf(request.body);
  return twinResponse(core, await core.twins.update(deviceId, update, ifMatchOf(request.headers)));
}

/** PUT: replaces tags and desired properties. */
async function replaceTwin({ core, request, deviceId }: RouteInput): Promise<Response> {
  const update = twinUpdateOf(request.body);
  return twinResponse(core, await core.twins.replace(deviceId, update, ifMatchOf(request.headers)));
}

async function invokeMethod({ core, request, deviceId }: RouteInput): Promise<Response> {
  const result = await core.methods.invoke(deviceId, methodInvocationOf(request.body));
  return { status: 200, body: { status: result.status, payload: result.payload } };
}

export const twinRoutes: readonly Route[] = [
  route('GET', 'twins/:id', 'RegistryRead', getTwin),
  route('PATCH', 'twins/:id', 'RegistryWrite', patchTwin),
  route('PUT', 'twins/:id', 'RegistryWrite', replaceTwin),
  route('POST', 'twins/:id/methods', 'ServiceConnect', invokeMethod),
];
