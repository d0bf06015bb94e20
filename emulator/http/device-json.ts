/**
 * Device identities as IoT Hub's REST API spells them (api-version 2021-04-12), and the
 * request bodies `azure-iothub`'s `Registry` sends for create and update.
 */
import type {
  CreateDeviceInput,
  DeviceAuthenticationInput,
  DeviceActivity,
  DeviceRecord,
  DeviceStatus,
  UpdateDeviceInput,
} from '../core/contracts';
import { HubError } from '../core/contracts';

export interface DeviceJson {
  deviceId: string;
  generationId: string;
  etag: string;
  connectionState: string;
  status: DeviceStatus;
  statusReason: string | null;
  connectionStateUpdatedTime: string;
  statusUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authentication: {
    type: 'sas' | 'selfSigned' | 'certificateAuthority';
    symmetricKey: { primaryKey: string | null; secondaryKey: string | null };
    x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  };
  capabilities: { iotEdge: boolean };
  parentScopes: string[];
}

export function toDeviceJson(device: DeviceRecord, activity: DeviceActivity): DeviceJson {
  return {
    deviceId: device.deviceId,
    generationId: device.generationId,
    etag: device.etag,
    connectionState: activity.connectionState,
    status: device.status,
    statusReason: device.statusReason,
    connectionStateUpdatedTime: activity.connectionStateUpdatedTime,
    statusUpdatedTime: device.statusUpdatedTime,
    lastActivityTime: activity.lastActivityTime,
    cloudToDeviceMessageCount: activity.cloudToDeviceMessageCount,
    authentication: authenticationJson(device),
    capabilities: { iotEdge: false },
    parentScopes: [],
  };
}

/** As IoT Hub reports it: an X.509 device has null keys, a SAS device null thumbprints. */
function authenticationJson(device: DeviceRecord): DeviceJson['authentication'] {
  const auth = device.authentication;
  if (!auth) {
    return {
      type: 'sas',
      symmetricKey: { primaryKey: device.keys.primaryKey, secondaryKey: device.keys.secondaryKey },
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    };
  }
  return {
    type: auth.type,
    symmetricKey: { primaryKey: null, secondaryKey: null },
    x509Thumbprint:
      auth.type === 'selfSigned'
        ? {
            primaryThumbprint: auth.primaryThumbprint,
            secondaryThumbprint: auth.secondaryThumbprint,
          }
        : { primaryThumbprint: null, secondaryThumbprint: null },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): HubError {
  return new HubError('ArgumentInvalid', message);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${field} must be a string`);
  return value;
}

interface ParsedDeviceBody {
  deviceId?: string;
  status?: DeviceStatus;
  statusReason?: string | null;
  keys?: { primaryKey?: string; secondaryKey?: string };
  authentication?: DeviceAuthenticationInput;
}

/** `authentication.type` as the REST API spells it (case-insensitive, like IoT Hub). */
const authTypes: Record<string, DeviceAuthenticationInput['type']> = {
  sas: 'sas',
  selfsigned: 'selfSigned',
  certificateauthority: 'certificateAuthority',
};

function parseThumbprints(auth: Record<string, unknown>): {
  primaryThumbprint: string | null;
  secondaryThumbprint: string | null;
} {
  const x509 = auth.x509Thumbprint;
  if (x509 !== undefined && x509 !== null && !isObject(x509)) {
    throw invalid('authentication.x509Thumbprint must be an object');
  }
  const fields = isObject(x509) ? x509 : {};
  return {
    // Neither thumbprint: refused by the registry with the rule's own message.
    primaryThumbprint: optionalString(fields.primaryThumbprint, 'primaryThumbprint') ?? null,
    secondaryThumbprint: optionalString(fields.secondaryThumbprint, 'secondaryThumbprint') ?? null,
  };
}

function parseAuthentication(auth: Record<string, unknown>): DeviceAuthenticationInput {
  const type = optionalString(auth.type, 'authentication.type') ?? 'sas';
  const known = authTypes[type.toLowerCase()];
  if (known === undefined) {
    throw new HubError(
      'NotImplemented',
      `authentication type '${type}' is not supported by the local IoT Hub (sas, selfSigned, certificateAuthority)`,
    );
  }
  if (known === 'selfSigned') return { type: known, ...parseThumbprints(auth) };
  return { type: known };
}

/** Reads the device JSON of a create or update request; rejects what the emulator cannot honour. */
export function parseDeviceBody(body: unknown): ParsedDeviceBody {
  if (!isObject(body)) throw invalid('the request body must be a device JSON object');
  const parsed: ParsedDeviceBody = {};
  const deviceId = optionalString(body.deviceId, 'deviceId');
  if (deviceId !== undefined) parsed.deviceId = deviceId;
  if (body.status !== undefined && body.status !== null) {
    if (body.status !== 'enabled' && body.status !== 'disabled') {
      throw invalid("status must be 'enabled' or 'disabled'");
    }
    parsed.status = body.status;
  }
  if (body.statusReason !== undefined) {
    parsed.statusReason = optionalString(body.statusReason, 'statusReason') ?? null;
  }
  const auth = body.authentication;
  if (auth !== undefined && auth !== null) {
    if (!isObject(auth)) throw invalid('authentication must be an object');
    parsed.authentication = parseAuthentication(auth);
    const symmetricKey = auth.symmetricKey;
    if (symmetricKey !== undefined && symmetricKey !== null) {
      if (!isObject(symmetricKey)) throw invalid('authentication.symmetricKey must be an object');
      parsed.keys = {};
      const primaryKey = optionalString(symmetricKey.primaryKey, 'primaryKey');
      const secondaryKey = optionalString(symmetricKey.secondaryKey, 'secondaryKey');
      if (primaryKey !== undefined) parsed.keys.primaryKey = primaryKey;
      if (secondaryKey !== undefined) parsed.keys.secondaryKey = secondaryKey;
    }
  }
  if (isObject(body.capabilities) && body.capabilities.iotEdge === true) {
    throw new HubError('NotImplemented', 'IoT Edge devices are not supported by the local IoT Hub');
  }
  return parsed;
}

export function toCreateInput(deviceId: string, parsed: ParsedDeviceBody): CreateDeviceInput {
  return {
    deviceId,
    ...(parsed.status !== undefined ? { status: parsed.status } : {}),
    ...(parsed.statusReason !== undefined ? { statusReason: parsed.statusReason } : {}),
    ...(parsed.keys !== undefined ? { keys: parsed.keys } : {}),
    ...(parsed.authentication !== undefined ? { authentication: parsed.authentication } : {}),
  };
}

export function toUpdateInput(parsed: ParsedDeviceBody): UpdateDeviceInput {
  return {
    ...(parsed.status !== undefined ? { status: parsed.status } : {}),
    ...(parsed.statusReason !== undefined ? { statusReason: parsed.statusReason } : {}),
    ...(parsed.keys !== undefined ? { keys: parsed.keys } : {}),
    ...(parsed.authentication !== undefined ? { authentication: parsed.authentication } : {}),
  };
}
