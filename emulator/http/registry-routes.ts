/**
 * The registry's device routes, as `azure-iothub`'s `Registry` calls them: device
 * create/get/list/update/delete, queries over `devices`, C2D purge. Each handler only decodes the
 * request and encodes the answer; the core decides (query evaluation and paging included).
 */
import type http from 'node:http';
import type { DeviceRecord, IotHubCore } from '../core/contracts';
import { HubError } from '../core/contracts';
import { parseDeviceBody, toCreateInput, toDeviceJson, toUpdateInput } from './device-json';
import { header, ifMatchOf, route, type Response, type Route, type RouteInput } from './route';

function requireDevice(core: IotHubCore, deviceId: string): DeviceRecord {
  const device = core.registry.get(deviceId);
  if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
  return device;
}

function deviceResponse(core: IotHubCore, device: DeviceRecord): Response {
  return {
    status: 200,
    body: toDeviceJson(device, core.registry.activity(device.deviceId)),
    headers: { etag: `"${device.etag}"` },
  };
}

/** `?top=` as sent (absent: the core's default); the core checks its bounds. */
function topOf(query: URLSearchParams): number | undefined {
  const top = query.get('top');
  return top === null ? undefined : Number(top);
}

/** `x-ms-max-item-count` as sent (absent or empty: the core's default); the core checks it. */
function pageSizeOf(headers: http.IncomingHttpHeaders): number | undefined {
  const value = header(headers, 'x-ms-max-item-count');
  return value === undefined || value === '' ? undefined : Number(value);
}

function listDevices({ core, request }: RouteInput): Response {
  const devices = core.registry.listUpTo(topOf(request.query));
  return {
    status: 200,
    body: devices.map((d) => toDeviceJson(d, core.registry.activity(d.deviceId))),
  };
}

function queryDevices({ core, request: { body, headers } }: RouteInput): Response {
  const text =
    typeof body === 'object' && body !== null ? (body as { query?: unknown }).query : undefined;
  const page = core.twins.query(
    text,
    pageSizeOf(headers),
    header(headers, 'x-ms-continuation') || undefined,
  );
  const responseHeaders: Record<string, string> = { 'x-ms-item-type': page.itemType };
  if (page.continuation !== undefined) responseHeaders['x-ms-continuation'] = page.continuation;
  return { status: 200, body: page.items, headers: responseHeaders };
}

function getDevice({ core, deviceId }: RouteInput): Response {
  return deviceResponse(core, requireDevice(core, deviceId));
}

/** Creates the device, or updates it when the request carries `If-Match`. */
async function putDevice({
  core,
  request: { body, headers },
  deviceId,
}: RouteInput): Promise<Response> {
  const parsed = parseDeviceBody(body);
  if (parsed.deviceId !== undefined && parsed.deviceId !== deviceId) {
    throw new HubError('ArgumentInvalid', 'the deviceId in the body does not match the URL');
  }
  const ifMatch = ifMatchOf(headers);
  const device =
    ifMatch === undefined
      ? await core.registry.create(toCreateInput(deviceId, parsed))
      : await core.registry.update(deviceId, toUpdateInput(parsed), ifMatch);
  return deviceResponse(core, device);
}

async function deleteDevice({ core, request, deviceId }: RouteInput): Promise<Response> {
  await core.registry.delete(deviceId, ifMatchOf(request.headers));
  return { status: 204 };
}

async function purgeCommands({ core, deviceId }: RouteInput): Promise<Response> {
  requireDevice(core, deviceId);
  const purged = await core.c2d.purge(deviceId);
  return { status: 200, body: { totalMessagesPurged: purged, deviceId, moduleId: null } };
}

export const deviceRegistryRoutes: readonly Route[] = [
  route('GET', 'devices', 'RegistryRead', listDevices),
  route('POST', 'devices/query', 'RegistryRead', queryDevices),
  route('GET', 'devices/:id', 'RegistryRead', getDevice),
  route('PUT', 'devices/:id', 'RegistryWrite', putDevice),
  route('DELETE', 'devices/:id', 'RegistryWrite', deleteDevice),
  route('DELETE', 'devices/:id/commands', 'ServiceConnect', purgeCommands),
];
