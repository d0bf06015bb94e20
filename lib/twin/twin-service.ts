/**
 * Device twin operations behind the REST API: read a twin, and merge a patch of tags and desired
 * properties into it, conditional on the etag. Failures from the hub become ApiErrors naming
 * the twin; nothing here knows about HTTP requests.
 */
import { ApiError } from '../http/problem';
import { hubErrorToApiError } from '../http/hub-errors';
import { isErrorLike } from '../iothub/errors';
import { normalizeEtag } from '../devices/device-service';
import { twinLimits } from './limits';
import type { DeviceTwin, TwinProperties, UpdateTwinRequest } from './schemas';
import type { HubTwin, HubTwinPatch, TwinClient } from './twin-client';

type JsonObject = Record<string, unknown>;
/** What IoT Hub returns is JSON: the cast only restates that for the response schema's type. */
type JsonProperties = DeviceTwin['tags'];

function subject(deviceId: string): string {
  return `The twin of device '${deviceId}'`;
}

/** The HTTP status of an SDK REST failure, when it carries one. */
function httpStatus(error: unknown): number | undefined {
  if (!isErrorLike(error)) return undefined;
  const status = (error as { response?: { statusCode?: unknown } }).response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

async function mapped<T>(deviceId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    // The SDK has no error class for 413: IoT Hub refused the merged twin as too large.
    if (httpStatus(error) === 413) {
      throw new ApiError(
        'payloadTooLarge',
        `IoT Hub refused the change: the merged twin would be over its limits (tags ${twinLimits.tagsBytes} bytes, desired properties ${twinLimits.desiredBytes} bytes).`,
      );
    }
    throw hubErrorToApiError(error, subject(deviceId)) ?? error;
  }
}

/** A section without IoT Hub's `$version` and `$metadata`, which become fields of their own. */
function toProperties(section: JsonObject | undefined): TwinProperties {
  const { $version, $metadata, ...properties } = section ?? {};
  const lastUpdated = (($metadata ?? {}) as { $lastUpdated?: unknown }).$lastUpdated;
  return {
    version: typeof $version === 'number' ? $version : 0,
    ...(typeof lastUpdated === 'string' ? { lastUpdated } : {}),
    properties: properties as JsonProperties,
  };
}

export function toApiTwin(twin: HubTwin): DeviceTwin {
  return {
    deviceId: twin.deviceId,
    etag: normalizeEtag(twin.etag ?? ''),
    ...(typeof twin.version === 'number' ? { version: twin.version } : {}),
    ...(twin.status ? { status: twin.status } : {}),
    ...(twin.connectionState ? { connectionState: twin.connectionState } : {}),
    ...(twin.lastActivityTime ? { lastActivityTime: twin.lastActivityTime } : {}),
    tags: (twin.tags ?? {}) as JsonProperties,
    desired: toProperties(twin.properties?.desired),
    reported: toProperties(twin.properties?.reported),
  };
}

export class TwinService {
  constructor(private readonly client: TwinClient) {}

  async get(deviceId: string): Promise<DeviceTwin> {
    return toApiTwin(await mapped(deviceId, () => this.client.get(deviceId)));
  }

  /** Merge `change` into the twin if its etag still is `ifMatch` (`*`: whatever it is). */
  async update(deviceId: string, change: UpdateTwinRequest, ifMatch: string): Promise<DeviceTwin> {
    const etag = normalizeEtag(ifMatch);
    const patch: HubTwinPatch = {
      ...(change.tags ? { tags: change.tags } : {}),
      ...(change.desired ? { properties: { desired: change.desired } } : {}),
    };
    return toApiTwin(await mapped(deviceId, () => this.client.update(deviceId, patch, etag)));
  }
}
