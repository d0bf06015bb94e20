/**
 * Device identity operations behind the REST API, over the registry client. Each failure from
 * the hub becomes an ApiError naming the device; nothing here knows about HTTP requests.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type {
  CreateDeviceRequest,
  CreatedDevice,
  Device,
  DeviceList,
  UpdateDeviceRequest,
} from './schemas';
import { deviceConnectionString } from '../connection-string';
import { ApiError } from '../http/problem';
import type { RegistryClient } from '../iothub/clients';
import { hubErrorToApiError } from '../http/hub-errors';
import { decodeContinuationToken, encodeContinuationToken } from './continuation-token';
import { toApiDevice } from './device-json';

const listQuery = 'SELECT * FROM devices';

function subject(deviceId: string): string {
  return `Device '${deviceId}'`;
}

async function mapped<T>(deviceId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw hubErrorToApiError(error, subject(deviceId)) ?? error;
  }
}

/** 32 random bytes, base64: the size and form of the keys IoT Hub generates itself. */
function newKey(): string {
  return randomBytes(32).toString('base64');
}

/** Strip the quotes and weak marker of an HTTP etag so header and registry values compare. */
export function normalizeEtag(value: string): string {
  return value
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

export class DeviceService {
  constructor(
    private readonly registry: RegistryClient,
    /** The hub host exactly as in the service connection string, for device connection strings. */
    private readonly hubHostName: string,
  ) {}

  async create(request: CreateDeviceRequest): Promise<CreatedDevice> {
    const deviceId = request.deviceId ?? randomUUID();
    const keys = { primaryKey: newKey(), secondaryKey: newKey() };
    // Build the connection string before the hub changes anything: a value it refuses (a ';'
    // the id schema missed) must fail the request with no device left behind.
    deviceConnectionString(this.hubHostName, deviceId, keys.primaryKey);
    const created = await mapped(deviceId, () =>
      this.registry.create({
        deviceId,
        status: request.status ?? 'enabled',
        authentication: { type: 'sas', symmetricKey: keys },
      }),
    );
    // The hub echoes the keys it stored; prefer them in case it replaced ours.
    const primaryKey = created.authentication?.symmetricKey?.primaryKey || keys.primaryKey;
    const secondaryKey = created.authentication?.symmetricKey?.secondaryKey || keys.secondaryKey;
    return {
      ...toApiDevice({ ...created, deviceId: created.deviceId || deviceId }),
      primaryKey,
      secondaryKey,
      connectionString: deviceConnectionString(this.hubHostName, deviceId, primaryKey),
    };
  }

  async get(deviceId: string): Promise<Device> {
    return toApiDevice(await mapped(deviceId, () => this.registry.get(deviceId)));
  }

  async list(pageSize: number, continuationToken: string | undefined): Promise<DeviceList> {
    const hubToken =
      continuationToken === undefined ? undefined : decodeContinuationToken(continuationToken);
    const query = this.registry.createQuery(listQuery, pageSize);
    let result: unknown;
    try {
      ({ result } = await query.next(hubToken));
    } catch (error) {
      throw hubErrorToApiError(error, 'The device list') ?? error;
    }
    const rows = Array.isArray(result) ? (result as unknown[]) : [];
    const items = rows
      .filter((row): row is Record<string, unknown> => typeof row === 'object' && row !== null)
      .map(toApiDevice);
    const next = query.hasMoreResults ? query.continuationToken : undefined;
    return { items, ...(next ? { continuationToken: encodeContinuationToken(next) } : {}) };
  }

  /**
   * Enable or disable a device. `Registry.update` always sends `If-Match: *` (a full replace),
   * so the precondition is checked here against the current etag, and the etag is also sent in
   * the body for hubs that honour it. The full identity is written back so keys stay unchanged.
   */
  async update(deviceId: string, change: UpdateDeviceRequest, ifMatch?: string): Promise<Device> {
    const current = await mapped(deviceId, () => this.registry.get(deviceId));
    const expected = ifMatch === undefined ? undefined : normalizeEtag(ifMatch);
    if (
      expected !== undefined &&
      expected !== '*' &&
      expected !== normalizeEtag(current.etag ?? '')
    ) {
      throw new ApiError(
        'preconditionFailed',
        `${subject(deviceId)} has a different etag now; read it again and retry.`,
      );
    }
    const updated = await mapped(deviceId, () =>
      this.registry.update({
        ...current,
        deviceId,
        status: change.status,
        statusReason: change.statusReason ?? '',
      }),
    );
    return toApiDevice(updated);
  }

  async delete(deviceId: string): Promise<void> {
    await mapped(deviceId, () => this.registry.delete(deviceId));
  }
}
