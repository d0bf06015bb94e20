/**
 * A fleet of simulated devices: one `azure-iot-device` MQTT client per device, kept open across
 * ticks. Each device is provisioned on first use (when allowed), connects at a paced rate, backs
 * off exponentially after failures, sends the tutorial's telemetry when its own interval is due,
 * logs and completes every cloud-to-device message it receives, and is controlled through its
 * twin and direct methods (`device-control.ts`, `device-link.ts`).
 *
 * Sending is driven by `tick()`: each tick sends only for the devices whose interval has
 * elapsed (within a small slack for timer jitter), so an interval is honoured to the tick's
 * resolution — the timer function's schedule, or the CLI's fine-grained loop.
 */
import { systemClock, type Clock } from '../clock';
import { Client as DeviceClient } from 'azure-iot-device';
import type { Message } from 'azure-iot-device';
import { NoRetry } from 'azure-iot-common';
import { deviceConnectionString } from '../connection-string';
import type { HubDevice, RegistryClient } from '../iothub/clients';
import { Backoff } from './backoff';
import { DeviceControl } from './device-control';
import { ControlledMqtt, linkDeviceControl } from './device-link';
import { Pacer } from './pacer';
import { telemetryMessage } from './telemetry-message';

export interface FleetOptions {
  /** Host (with `:port` for the local hub) as device connection strings carry it. */
  hubHostName: string;
  deviceIds: readonly string[];
  registry: Pick<RegistryClient, 'get' | 'create'>;
  autoProvision: boolean;
  connectsPerSecond: number;
  log: (line: string) => void;
  backoff?: { initialMs: number; maxMs: number };
  /** Each device's interval until its twin or a method changes it (default 10 s). */
  defaultIntervalSeconds?: number;
  /** How early a send may come to count as due (timer jitter); at most a quarter interval. */
  dueSlackMs?: number;
  /** Tests pass a manual clock. */
  clock?: Clock;
}

export interface FleetStats {
  devices: number;
  connected: number;
  sent: number;
  acknowledged: number;
  c2dReceived: number;
  errors: number;
}

interface SimulatedDevice {
  id: string;
  client?: DeviceClient;
  connected: boolean;
  connecting?: Promise<void>;
  sending: boolean;
  backoff: Backoff;
  nextAttemptAt: number;
  sequence: number;
  control: DeviceControl;
  lastSentAt?: number;
}

/** Error names only: SDK messages can quote connection details. */
function describe(error: unknown): string {
  if (error instanceof Error) return error.name || 'Error';
  return 'unknown error';
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && error.name === 'DeviceNotFoundError';
}

export class DeviceFleet {
  private readonly devices: SimulatedDevice[];
  private readonly pacer: Pacer;
  private readonly clock: Clock;
  private readonly counters = { sent: 0, acknowledged: 0, c2dReceived: 0, errors: 0 };
  private closed = false;

  constructor(private readonly options: FleetOptions) {
    this.clock = options.clock ?? systemClock;
    this.pacer = new Pacer(options.connectsPerSecond, this.clock);
    const backoff = options.backoff ?? { initialMs: 1000, maxMs: 60_000 };
    const startTime = new Date(this.clock.now()).toISOString();
    this.devices = options.deviceIds.map((id) => ({
      id,
      connected: false,
      sending: false,
      backoff: new Backoff(backoff),
      nextAttemptAt: 0,
      sequence: 0,
      control: new DeviceControl(options.defaultIntervalSeconds ?? 10, startTime),
    }));
  }

  stats(): FleetStats {
    return {
      devices: this.devices.length,
      connected: this.devices.filter((d) => d.connected).length,
      ...this.counters,
    };
  }

  /** Starts connecting every device that is down and due; resolves when those attempts end. */
  async connect(): Promise<void> {
    const due = this.devices.filter(
      (d) => !d.connected && !d.connecting && d.nextAttemptAt <= this.clock.now(),
    );
    for (const device of due) {
      await this.pacer.take();
      if (this.closed) return;
      device.connecting = this.open(device).finally(() => {
        device.connecting = undefined;
      });
    }
    await Promise.all(due.flatMap((d) => (d.connecting ? [d.connecting] : [])));
  }

  /** A device's current telemetry interval in seconds (undefined for an unknown id). */
  intervalSeconds(deviceId: string): number | undefined {
    return this.devices.find((d) => d.id === deviceId)?.control.intervalSeconds;
  }

  /**
   * One telemetry message from every connected device whose interval has elapsed and that is
   * not still sending its last one.
   */
  async sendTelemetry(): Promise<void> {
    const ready = this.devices.filter(
      (d) => d.connected && d.client && !d.sending && this.isDue(d),
    );
    await Promise.all(ready.map((device) => this.send(device)));
  }

  private isDue(device: SimulatedDevice): boolean {
    if (device.lastSentAt === undefined) return true;
    const intervalMs = device.control.intervalSeconds * 1000;
    const slackMs = Math.min(this.options.dueSlackMs ?? 500, intervalMs / 4);
    return this.clock.now() - device.lastSentAt >= intervalMs - slackMs;
  }

  /** Connects what it can, then sends: one simulator tick. */
  async tick(): Promise<FleetStats> {
    await this.connect();
    await this.sendTelemetry();
    return this.stats();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.devices.flatMap((d) => (d.connecting ? [d.connecting] : [])));
    await Promise.all(
      this.devices.map(async (device) => {
        const client = device.client;
        device.client = undefined;
        device.connected = false;
        if (client) await client.close().catch(() => undefined);
      }),
    );
  }

  private async send(device: SimulatedDevice): Promise<void> {
    const client = device.client;
    if (!client) return;
    device.sending = true;
    device.lastSentAt = this.clock.now();
    const message = telemetryMessage(device.id, device.sequence++);
    this.counters.sent += 1;
    try {
      await client.sendEvent(message);
      this.counters.acknowledged += 1;
    } catch (error) {
      this.counters.errors += 1;
      this.options.log(
        `simulator: ${device.id} send failed (${describe(error)}); reconnecting later`,
      );
      this.markDown(device);
    } finally {
      device.sending = false;
    }
  }

  private async open(device: SimulatedDevice): Promise<void> {
    try {
      const key = await this.deviceKey(device.id);
      const client = DeviceClient.fromConnectionString(
        deviceConnectionString(this.options.hubHostName, device.id, key),
        ControlledMqtt,
      );
      // The fleet owns reconnection (with backoff), so the SDK must not retry on its own.
      client.setRetryPolicy(new NoRetry());
      client.on('message', (message: Message) => this.receive(device, client, message));
      client.on('error', (error: unknown) => {
        this.options.log(`simulator: ${device.id} client error (${describe(error)})`);
      });
      client.on('disconnect', () => {
        if (device.client === client) this.markDown(device);
      });
      await client.open();
      if (this.closed) {
        await client.close().catch(() => undefined);
        return;
      }
      await this.link(device, client);
      device.client = client;
      device.connected = true;
      device.backoff.reset();
    } catch (error) {
      this.counters.errors += 1;
      const delay = device.backoff.fail();
      device.nextAttemptAt = this.clock.now() + delay;
      this.options.log(
        `simulator: ${device.id} could not connect (${describe(error)}); retry ${device.backoff.attempts} in ${delay} ms`,
      );
    }
  }

  /** Twin and methods; a hub without them still gets telemetry, so a failure is only logged. */
  private async link(device: SimulatedDevice, client: DeviceClient): Promise<void> {
    const options = {
      deviceId: device.id,
      log: this.options.log,
      onError: () => {
        this.counters.errors += 1;
      },
    };
    try {
      await linkDeviceControl(client, device.control, options);
    } catch (error) {
      options.onError();
      this.options.log(
        `simulator: ${device.id} has no twin or methods (${describe(error)}); sending telemetry only`,
      );
    }
  }

  private markDown(device: SimulatedDevice): void {
    const client = device.client;
    device.client = undefined;
    device.connected = false;
    device.nextAttemptAt = this.clock.now() + device.backoff.fail();
    if (client) {
      client.removeAllListeners();
      client.close().catch(() => undefined);
    }
  }

  private receive(device: SimulatedDevice, client: DeviceClient, message: Message): void {
    this.counters.c2dReceived += 1;
    const body = Buffer.isBuffer(message.data)
      ? message.data.toString('utf8')
      : String(message.data);
    this.options.log(
      `simulator: ${device.id} received C2D message ${message.messageId ?? '(no id)'}: ${body.slice(0, 200)}`,
    );
    client.complete(message).catch((error: unknown) => {
      this.counters.errors += 1;
      this.options.log(
        `simulator: ${device.id} could not complete a C2D message (${describe(error)})`,
      );
    });
  }

  private async deviceKey(deviceId: string): Promise<string> {
    const { registry } = this.options;
    try {
      return primaryKeyOf(await registry.get(deviceId));
    } catch (error) {
      if (!isNotFound(error) || !this.options.autoProvision) throw error;
    }
    this.options.log(`simulator: provisioning ${deviceId}`);
    try {
      return primaryKeyOf(await registry.create({ deviceId, status: 'enabled' }));
    } catch (error) {
      // Another instance may have created it meanwhile.
      if (error instanceof Error && error.name === 'DeviceAlreadyExistsError') {
        return primaryKeyOf(await registry.get(deviceId));
      }
      throw error;
    }
  }
}

function primaryKeyOf(device: HubDevice): string {
  const key = device.authentication?.symmetricKey?.primaryKey;
  if (!key) throw new Error('device has no symmetric key (only SAS devices can be simulated)');
  return key;
}

/** `<prefix>-1` … `<prefix>-<count>` */
export function fleetDeviceIds(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
}
