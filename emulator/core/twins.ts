/**
 * Device twins: one per device, created with it (fresh and unstored until its first change) and
 * deleted with it. The service changes tags and desired properties (merge or replace, guarded by
 * the twin's etag); the device changes reported properties. Every change bumps the twin's version
 * and etag and is journaled as the whole twin before the call resolves.
 */
import type {
  Clock,
  DeviceRecord,
  QueryPage,
  Registry,
  TwinRecord,
  TwinSection,
  Twins,
  TwinUpdate,
} from './contracts';
import { HubError } from './contracts';
import { counterOfEtag, etagFor, etagMatches } from './identity-rules';
import { Listeners } from './listeners';
import type { CoreStore } from './store';
import {
  assertSize,
  cloneJson,
  isJsonObject,
  mergeWithMetadata,
  metadataFor,
  twinLimits,
  validateSection,
  type JsonObject,
  type MetadataStamp,
} from './twin-json';
import { runTwinQuery } from './twin-query';

export interface TwinDependencies {
  clock: Clock;
  store: CoreStore;
  registry: Registry;
}

type Section = 'desired' | 'reported';

function freshSection(device: DeviceRecord, section: Section): TwinSection {
  const stamp: MetadataStamp = { $lastUpdated: device.createdTime };
  if (section === 'desired') stamp.$lastUpdatedVersion = 1;
  return { properties: {}, metadata: { ...stamp }, version: 1 };
}

/** The section as IoT Hub shows it: properties, then `$metadata` and `$version`. */
function sectionJson(section: TwinSection): JsonObject {
  return {
    ...cloneJson(section.properties),
    $metadata: cloneJson(section.metadata),
    $version: section.version,
  };
}

export class DeviceTwins implements Twins {
  private readonly twins = new Map<string, TwinRecord>();
  private readonly desiredChanged = new Listeners<[string, JsonObject]>();
  private etagCounter = 0;

  constructor(
    private readonly deps: TwinDependencies,
    recovered: readonly TwinRecord[],
  ) {
    for (const twin of recovered) {
      this.twins.set(twin.deviceId, twin);
      this.etagCounter = Math.max(this.etagCounter, counterOfEtag(twin.etag));
    }
  }

  get(deviceId: string): TwinRecord | undefined {
    const twin = this.current(deviceId);
    return twin && cloneJson(twin);
  }

  document(deviceId: string): JsonObject | undefined {
    const device = this.deps.registry.get(deviceId);
    const twin = this.current(deviceId);
    if (!device || !twin) return undefined;
    const activity = this.deps.registry.activity(deviceId);
    return {
      deviceId,
      etag: twin.etag,
      deviceEtag: device.etag,
      status: device.status,
      statusReason: device.statusReason,
      statusUpdateTime: device.statusUpdatedTime,
      connectionState: activity.connectionState,
      lastActivityTime: activity.lastActivityTime,
      cloudToDeviceMessageCount: activity.cloudToDeviceMessageCount,
      authenticationType: device.authentication?.type ?? 'sas',
      x509Thumbprint:
        device.authentication?.type === 'selfSigned'
          ? {
              primaryThumbprint: device.authentication.primaryThumbprint,
              secondaryThumbprint: device.authentication.secondaryThumbprint,
            }
          : { primaryThumbprint: null, secondaryThumbprint: null },
      modelId: '',
      version: twin.version,
      tags: cloneJson(twin.tags),
      properties: { desired: sectionJson(twin.desired), reported: sectionJson(twin.reported) },
      capabilities: { iotEdge: false },
    };
  }

  async update(deviceId: string, update: TwinUpdate, ifMatch?: string): Promise<TwinRecord> {
    const twin = this.requireMatching(deviceId, ifMatch);
    const tags = update.tags && validateSection(update.tags, 'tags', true);
    const desired = update.desired && validateSection(update.desired, 'properties.desired', true);
    const next = cloneJson(twin);
    const now = this.isoNow();
    if (tags) {
      mergeWithMetadata(next.tags, {}, tags, { $lastUpdated: now });
      assertSize(next.tags, 'tags', twinLimits.tagsBytes);
    }
    if (desired) {
      next.desired.version++;
      const stamp = { $lastUpdated: now, $lastUpdatedVersion: next.desired.version };
      mergeWithMetadata(next.desired.properties, next.desired.metadata, desired, stamp);
      assertSize(next.desired.properties, 'properties.desired', twinLimits.propertiesBytes);
    }
    if (!tags && !desired) return cloneJson(twin);
    await this.commit(next);
    if (desired) this.notifyDesired(next, desired);
    return cloneJson(next);
  }

  async replace(deviceId: string, update: TwinUpdate, ifMatch?: string): Promise<TwinRecord> {
    const twin = this.requireMatching(deviceId, ifMatch);
    const tags = validateSection(update.tags ?? {}, 'tags', false);
    const desired = validateSection(update.desired ?? {}, 'properties.desired', false);
    assertSize(tags, 'tags', twinLimits.tagsBytes);
    assertSize(desired, 'properties.desired', twinLimits.propertiesBytes);
    const next = cloneJson(twin);
    next.tags = cloneJson(tags);
    next.desired.version++;
    const stamp = { $lastUpdated: this.isoNow(), $lastUpdatedVersion: next.desired.version };
    next.desired.properties = cloneJson(desired);
    next.desired.metadata = metadataFor(desired, stamp);
    await this.commit(next);
    // The device learns the new desired document, with null for what the replacement removed.
    const patch: JsonObject = {};
    for (const key of Object.keys(twin.desired.properties)) patch[key] = null;
    this.notifyDesired(next, Object.assign(patch, desired));
    return cloneJson(next);
  }

  async updateReported(deviceId: string, patch: unknown): Promise<number> {
    const twin = this.requireMatching(deviceId, undefined);
    const reported = validateSection(patch, 'properties.reported', true);
    const next = cloneJson(twin);
    next.reported.version++;
    const stamp = { $lastUpdated: this.isoNow() };
    mergeWithMetadata(next.reported.properties, next.reported.metadata, reported, stamp);
    assertSize(next.reported.properties, 'properties.reported', twinLimits.propertiesBytes);
    await this.commit(next);
    return next.reported.version;
  }

  query(text: unknown, pageSize?: number, continuation?: string): QueryPage {
    const documents = this.deps.registry
      .list()
      .map((device) => this.document(device.deviceId))
      .filter((doc): doc is JsonObject => doc !== undefined);
    return runTwinQuery(text, documents, pageSize, continuation);
  }

  onDesiredChanged(listener: (deviceId: string, patch: JsonObject) => void): () => void {
    return this.desiredChanged.add(listener);
  }

  /** Called by the registry as it deletes the device (the device's delete record covers it). */
  forget(deviceId: string): void {
    this.twins.delete(deviceId);
  }

  private current(deviceId: string): TwinRecord | undefined {
    const existing = this.twins.get(deviceId);
    if (existing) return existing;
    const device = this.deps.registry.get(deviceId);
    if (!device) return undefined;
    // Kept in memory (not journaled) so its etag stays stable until the first change.
    const twin: TwinRecord = {
      deviceId,
      etag: etagFor(++this.etagCounter),
      version: 1,
      tags: {},
      desired: freshSection(device, 'desired'),
      reported: freshSection(device, 'reported'),
    };
    this.twins.set(deviceId, twin);
    return twin;
  }

  private requireMatching(deviceId: string, ifMatch: string | undefined): TwinRecord {
    const twin = this.current(deviceId);
    if (!twin) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    if (!etagMatches(twin.etag, ifMatch)) {
      throw new HubError(
        'PreconditionFailed',
        `The etag of the twin of ${deviceId} does not match`,
      );
    }
    return twin;
  }

  /** Installs the new twin at once (a concurrent change sees it) and resolves once durable. */
  private async commit(next: TwinRecord): Promise<void> {
    next.version++;
    next.etag = etagFor(++this.etagCounter);
    const previous = this.twins.get(next.deviceId);
    this.twins.set(next.deviceId, next);
    try {
      await this.deps.store.record([{ kind: 'twin.put', twin: cloneJson(next) }]);
    } catch (error) {
      if (this.twins.get(next.deviceId) === next && previous)
        this.twins.set(next.deviceId, previous);
      throw error;
    }
  }

  private notifyDesired(twin: TwinRecord, patch: JsonObject): void {
    if (!this.deps.registry.get(twin.deviceId)) return;
    const body = isJsonObject(patch) ? cloneJson(patch) : {};
    this.desiredChanged.emit(twin.deviceId, { ...body, $version: twin.desired.version });
  }

  private isoNow(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}
