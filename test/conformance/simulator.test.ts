/**
 * The simulator's fleet against the local IoT Hub: it provisions its devices through the
 * registry, connects them over MQTT, sends the tutorial telemetry (read back from the Event
 * Hub-compatible endpoint), and receives and completes a C2D message (positive feedback).
 */
import { Message } from 'azure-iot-common';
import { Client as ServiceClient } from 'azure-iothub';
import { registryFromSettings } from '../../lib/iothub/clients';
import { DeviceFleet, fleetDeviceIds } from '../../lib/simulator/fleet';
import { startEmulator } from '../support/emulator';
import type { EmulatorInstance } from '../support/emulator';
import { until, type Probe } from '../support/wait';
import { collectEvents, deviceIdOf } from '../support/events';

/** Polls for up to 20 s, every 100 ms: longer and sparser than `until`'s defaults. */
const waitFor = <T>(what: string, probe: Probe<T>): Promise<T> => until(what, probe, 20_000, 100);

describe('simulator fleet on the local IoT Hub', () => {
  let hub: EmulatorInstance;
  let fleet: DeviceFleet;
  const lines: string[] = [];

  beforeAll(async () => {
    hub = await startEmulator({ inMemory: true });
    const { serviceConnectionString, hostName } = hub.connection;
    fleet = new DeviceFleet({
      hubHostName: hostName,
      deviceIds: fleetDeviceIds('simtest', 3),
      registry: registryFromSettings({
        kind: 'connectionString',
        connectionString: serviceConnectionString,
        hostName,
      }),
      autoProvision: true,
      connectsPerSecond: 50,
      // Each device sends at most once a second: the second round comes from a later tick.
      defaultIntervalSeconds: 1,
      log: (line) => lines.push(line),
    });
  });

  afterAll(async () => {
    await fleet?.close();
    await hub?.stop();
  });

  it('provisions and connects every device, and each acknowledged message reaches the endpoint', async () => {
    const first = await fleet.tick();
    expect(first).toMatchObject({ devices: 3, connected: 3, sent: 3, acknowledged: 3, errors: 0 });
    expect(lines.filter((l) => l.includes('provisioning'))).toHaveLength(3);
    expect((await fleet.tick()).sent).toBe(3); // not due yet
    await waitFor('a second round of sends', async () =>
      (await fleet.tick()).sent >= 6 ? true : undefined,
    );

    const eventLog = collectEvents(hub.connection.eventsConnectionString);
    try {
      await waitFor('six events', () => (eventLog.events.length >= 6 ? true : undefined));
    } finally {
      await eventLog.close();
    }
    const received = eventLog.events;
    const devices = new Set(received.map((e) => String(deviceIdOf(e))));
    expect(devices).toEqual(new Set(['simtest-1', 'simtest-2', 'simtest-3']));
    for (const event of received) {
      const body = event.body as { deviceId: string; windSpeed: number };
      expect(body.deviceId).toBe(event.systemProperties?.['iothub-connection-device-id']);
      expect(body.windSpeed).toBeGreaterThanOrEqual(12);
      expect(body.windSpeed).toBeLessThanOrEqual(16);
      expect(event.properties?.Property).toMatch(/^PropMsg_\d+$/);
      expect(event.contentType).toBe('application/json');
      expect(event.correlationId).toMatch(/^correlation_\d+$/);
    }
  });

  it('receives and completes a cloud-to-device message, leaving its queue empty', async () => {
    const service = ServiceClient.fromConnectionString(hub.connection.serviceConnectionString);
    await service.open();
    try {
      const message = new Message(JSON.stringify({ command: 'ping' }));
      message.messageId = 'sim-c2d-1';
      message.ack = 'positive';
      await service.send('simtest-2', message);
      await waitFor('the C2D message at the device', () =>
        fleet.stats().c2dReceived >= 1 ? true : undefined,
      );
      expect(lines.some((l) => l.includes('simtest-2 received C2D message sim-c2d-1'))).toBe(true);
      const registry = registryFromSettings({
        kind: 'connectionString',
        connectionString: hub.connection.serviceConnectionString,
        hostName: hub.connection.hostName,
      });
      await waitFor('the completed message to leave the queue', async () => {
        const device = await registry.get('simtest-2');
        return Number(device.cloudToDeviceMessageCount) === 0 ? true : undefined;
      });
    } finally {
      await service.close();
    }
  });
});
