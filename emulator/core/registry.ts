/** The device identity registry: ids, keys, status and etags, plus volatile connection state. */
import type {
  Clock,
  CreateDeviceInput,
  DeviceActivity,
  DeviceRecord,
  Registry,
  UpdateDeviceInput,
} from './contracts';
import { HubError } from './contracts';
import {
  assertValidDeviceId,
  counterOfEtag,
  etagFor,
  etagMatches,
  generateGenerationId,
  resolveAuthentication,
  sameAuthentication,
} from './identity-rules';
import { Listeners } from './listeners';
import type { CoreStore, StateChange } from './store';

/** IoT Hub's bound (and default) for one device listing (`GET /devices?top=`). */
export const deviceListLimit = 1000;

/** What IoT Hub reports for "never". */
const NEVER = '0001-01-01T00:00:00Z';

/** Times as ms (0 = never), formatted only when asked: activity is recorded per message. */
interface MutableActivity {
  connected: boolean;
  connectionStateUpdatedTime: number;
  lastActivityTime: number;
}

export interface RegistryDependencies {
  clock: Clock;
  store: CoreStore;
  /** Empties the device's C2D queue when it is deleted; returns the journal entries for it. */
  purgeQueue(deviceId: string, generationId: string): StateChange[];
  /** Drops the device's twin when it is deleted (its journal entry is the device's delete). */
  forgetTwin(deviceId: string): void;
  queueDepth(deviceId: string): number;
}

function copy(device: DeviceRecord): DeviceRecord {
  const { authentication, ...rest } = device;
  return {
    ...rest,
    keys: { ...device.keys },
    ...(authentication ? { authentication: { ...authentication } } : {}),
  };
}

export class DeviceRegistry implements Registry {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly activities = new Map<string, MutableActivity>();
  private readonly changed = new Listeners<[string, DeviceRecord | undefined]>();
  private etagCounter = 0;

  constructor(
    private readonly deps: RegistryDependencies,
    recovered: readonly DeviceRecord[],
  ) {
    for (const device of recovered) {
      this.devices.set(device.deviceId, copy(device));
      this.etagCounter = Math.max(this.etagCounter, counterOfEtag(device.etag));
    }
  }

  async create(input: CreateDeviceInput): Promise<DeviceRecord> {
    assertValidDeviceId(input.deviceId);
    const status = input.status ?? 'enabled';
    assertValidStatus(status);
    const { keys, authentication } = resolveAuthentication(input.authentication, input.keys);
    if (this.devices.has(input.deviceId)) {
      throw new HubError(
        'DeviceAlreadyExists',
        `A device with id ${input.deviceId} already exists`,
      );
    }
    const now = this.isoNow();
    const device: DeviceRecord = {
      deviceId: input.deviceId,
      generationId: generateGenerationId(),
      etag: this.nextEtag(),
      status,
      statusReason: input.statusReason ?? null,
      statusUpdatedTime: now,
      keys,
      ...(authentication ? { authentication } : {}),
      createdTime: now,
    };
    // Claimed synchronously so a concurrent create of the same id fails.
    this.devices.set(device.deviceId, device);
    try {
      await this.deps.store.record([{ kind: 'device.put', device: copy(device) }]);
    } catch (error) {
      if (this.devices.get(device.deviceId) === device) this.devices.delete(device.deviceId);
      throw error;
    }
    return copy(device);
  }

  get(deviceId: string): DeviceRecord | undefined {
    const device = this.devices.get(deviceId);
    return device && copy(device);
  }

  enabledGenerationId(deviceId: string): string | undefined {
    const device = this.devices.get(deviceId);
    return device && device.status !== 'disabled' ? device.generationId : undefined;
  }

  list(): DeviceRecord[] {
    return [...this.devices.values()]
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
      .map(copy);
  }

  listUpTo(top?: number): DeviceRecord[] {
    const limit = top ?? deviceListLimit;
    if (!Number.isInteger(limit) || limit < 1 || limit > deviceListLimit) {
      throw new HubError('ArgumentInvalid', `top must be 1-${deviceListLimit}`);
    }
    return this.list().slice(0, limit);
  }

  async update(
    deviceId: string,
    input: UpdateDeviceInput,
    ifMatch?: string,
  ): Promise<DeviceRecord> {
    const current = this.require(deviceId, ifMatch);
    if (input.status !== undefined) assertValidStatus(input.status);
    const { keys, authentication } = resolveAuthentication(
      input.authentication,
      input.keys,
      current,
    );
    const status = input.status ?? current.status;
    const { authentication: _previous, ...unchanged } = current;
    const next: DeviceRecord = {
      ...unchanged,
      etag: this.nextEtag(),
      status,
      statusReason: input.statusReason !== undefined ? input.statusReason : current.statusReason,
      statusUpdatedTime: status !== current.status ? this.isoNow() : current.statusUpdatedTime,
      keys,
      ...(authentication ? { authentication } : {}),
    };
    this.devices.set(deviceId, next);
    await this.deps.store.record([{ kind: 'device.put', device: copy(next) }]);
    const disabled = current.status === 'enabled' && next.status === 'disabled';
    const rekeyed =
      current.keys.primaryKey !== next.keys.primaryKey ||
      current.keys.secondaryKey !== next.keys.secondaryKey ||
      !sameAuthentication(current.authentication, next.authentication);
    if (disabled || rekeyed) this.changed.emit(deviceId, copy(next));
    return copy(next);
  }

  async delete(deviceId: string, ifMatch?: string): Promise<void> {
    const device = this.require(deviceId, ifMatch);
    this.devices.delete(deviceId);
    this.deps.forgetTwin(deviceId);
    // One record, journaled now: a create of the same id right after must land after it.
    await this.deps.store.record([
      ...this.deps.purgeQueue(deviceId, device.generationId),
      { kind: 'device.delete', deviceId },
    ]);
    this.activities.delete(deviceId);
    this.changed.emit(deviceId, undefined);
  }

  activity(deviceId: string): DeviceActivity {
    const a = this.activities.get(deviceId);
    const iso = (time: number | undefined): string => (time ? new Date(time).toISOString() : NEVER);
    return {
      connectionState: a?.connected ? 'Connected' : 'Disconnected',
      connectionStateUpdatedTime: iso(a?.connectionStateUpdatedTime),
      lastActivityTime: iso(a?.lastActivityTime),
      cloudToDeviceMessageCount: this.deps.queueDepth(deviceId),
    };
  }

  setConnected(deviceId: string, connected: boolean): void {
    if (!this.devices.has(deviceId)) return;
    const now = this.deps.clock.now();
    const a = this.activityOf(deviceId);
    if (a.connected !== connected) a.connectionStateUpdatedTime = now;
    a.connected = connected;
    a.lastActivityTime = now;
  }

  recordActivity(deviceId: string): void {
    if (!this.devices.has(deviceId)) return;
    this.activityOf(deviceId).lastActivityTime = this.deps.clock.now();
  }

  onDeviceChanged(
    listener: (deviceId: string, device: DeviceRecord | undefined) => void,
  ): () => void {
    return this.changed.add(listener);
  }

  private require(deviceId: string, ifMatch: string | undefined): DeviceRecord {
    const device = this.devices.get(deviceId);
    if (!device) throw new HubError('DeviceNotFound', `Device ${deviceId} not found`);
    if (!etagMatches(device.etag, ifMatch)) {
      throw new HubError('PreconditionFailed', `The etag of device ${deviceId} does not match`);
    }
    return device;
  }

  private activityOf(deviceId: string): MutableActivity {
    let a = this.activities.get(deviceId);
    if (!a) {
      a = { connected: false, connectionStateUpdatedTime: 0, lastActivityTime: 0 };
      this.activities.set(deviceId, a);
    }
    return a;
  }

  private nextEtag(): string {
    return etagFor(++this.etagCounter);
  }

  private isoNow(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}

function assertValidStatus(status: unknown): void {
  if (status !== 'enabled' && status !== 'disabled') {
    throw new HubError('ArgumentInvalid', "The status must be 'enabled' or 'disabled'");
  }
}
