/**
 * The twin operations of `azure-iothub`'s `Registry` that the API uses, described by the members
 * it calls (so unit tests hand in fakes), and their construction from settings: a connection
 * string (`host:port` works through `createRegistry`) or, in Azure, Entra ID.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { Registry } from 'azure-iothub';
import type { IotHubAccess } from '../settings';
import { createRegistry } from '../iothub/registry-agent';

type JsonObject = Record<string, unknown>;

/** A twin as IoT Hub returns it (the fields the API reads). */
export interface HubTwin {
  deviceId: string;
  etag?: string;
  version?: number;
  status?: string;
  connectionState?: string;
  lastActivityTime?: string;
  tags?: JsonObject;
  properties?: { desired?: JsonObject; reported?: JsonObject };
}

/** What `PATCH /twins/{id}` takes: tags and desired properties, merged. */
export interface HubTwinPatch {
  tags?: JsonObject;
  properties?: { desired: JsonObject };
}

export interface TwinClient {
  get(deviceId: string): Promise<HubTwin>;
  /** `etag` is sent as If-Match (`*` for unconditional). */
  update(deviceId: string, patch: HubTwinPatch, etag: string): Promise<HubTwin>;
}

/** The SDK returns a `Twin` object that also holds the registry; keep the JSON fields only. */
function plainTwin(twin: object): HubTwin {
  const { deviceId, etag, version, status, connectionState, lastActivityTime, tags, properties } =
    twin as HubTwin;
  return { deviceId, etag, version, status, connectionState, lastActivityTime, tags, properties };
}

export function adaptTwinRegistry(registry: Registry): TwinClient {
  return {
    get: async (deviceId) => plainTwin((await registry.getTwin(deviceId)).responseBody),
    update: async (deviceId, patch, etag) =>
      plainTwin((await registry.updateTwin(deviceId, patch, etag)).responseBody),
  };
}

export function twinClientFromSettings(access: IotHubAccess): TwinClient {
  return adaptTwinRegistry(
    access.kind === 'identity'
      ? Registry.fromTokenCredential(access.hostName, new DefaultAzureCredential())
      : createRegistry(access.connectionString),
  );
}
