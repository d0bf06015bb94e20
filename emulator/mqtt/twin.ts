/**
 * The minimal device twin the MQTT surface answers with, so `client.getTwin()` and reported
 * property updates work. Desired properties are not emulated (no service API sets them); reported
 * properties live in memory only and are lost on restart (a documented difference).
 */

type JsonObject = Record<string, unknown>;

interface ReportedState {
  properties: JsonObject;
  version: number;
}

export class TwinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TwinError';
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON merge patch (RFC 7386), as IoT Hub applies reported property patches: null deletes. */
function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const result: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isObject(value))
      result[key] = mergePatch(isObject(result[key]) ? result[key] : {}, value);
    else result[key] = value;
  }
  return result;
}

export class TwinStore {
  private readonly reported = new Map<string, ReportedState>();

  /** The twin document as `$iothub/twin/GET` returns it. */
  document(deviceId: string): { desired: JsonObject; reported: JsonObject } {
    const state = this.reported.get(deviceId);
    return {
      desired: { $version: 1 },
      reported: { ...(state?.properties ?? {}), $version: state?.version ?? 1 },
    };
  }

  /** Applies a reported-properties patch; returns the new version. Throws TwinError on bad JSON. */
  patchReported(deviceId: string, body: Buffer): number {
    let patch: unknown;
    try {
      patch = JSON.parse(body.toString('utf8'));
    } catch {
      throw new TwinError('reported properties patch is not JSON');
    }
    if (!isObject(patch)) throw new TwinError('reported properties patch is not a JSON object');
    const state = this.reported.get(deviceId) ?? { properties: {}, version: 1 };
    const next = { properties: mergePatch(state.properties, patch), version: state.version + 1 };
    this.reported.set(deviceId, next);
    return next.version;
  }

  /** A deleted device's twin goes with it. */
  forget(deviceId: string): void {
    this.reported.delete(deviceId);
  }
}
