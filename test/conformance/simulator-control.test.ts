/**
 * The simulator's devices controlled through the local IoT Hub with the unmodified service SDK:
 * their connect-time reported properties, a desired interval applied and acknowledged the Plug and
 * Play way, the SetTelemetryInterval method (200 and 400) and 404 for any other method.
 */
import { NoRetry } from 'azure-iot-common';
import type { Client as ServiceClient } from 'azure-iothub';
import { registryFromSettings } from '../../lib/iothub/clients';
import { createRegistry, createServiceClient } from '../../lib/iothub/registry-agent';
import { DeviceFleet } from '../../lib/simulator/fleet';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until, type Probe } from '../support/wait';

const waitFor = <T>(what: string, probe: Probe<T>): Promise<T> => until(what, probe, 20_000, 100);

interface Ack {
  value: number;
  ac: number;
  av: number;
  ad: string;
}

describe('simulated devices controlled through twins and direct methods', () => {
  let hub: EmulatorInstance;
  let fleet: DeviceFleet;
  let service: ServiceClient;
  const lines: string[] = [];
  const deviceId = 'ctl-1';

  const reported = async (): Promise<Record<string, unknown>> => {
    const registry = createRegistry(hub.connection.serviceConnectionString);
    const twin = (await registry.getTwin(deviceId)).responseBody;
    return twin.properties.reported;
  };
  const invoke = async (methodName: string, payload: unknown): Promise<{ result: unknown }> =>
    service.invokeDeviceMethod(deviceId, {
      methodName,
      payload: payload as object,
      responseTimeoutInSeconds: 5,
    });

  beforeAll(async () => {
    hub = await startEmulator({ inMemory: true });
    const { serviceConnectionString, hostName } = hub.connection;
    fleet = new DeviceFleet({
      hubHostName: hostName,
      deviceIds: [deviceId],
      registry: registryFromSettings({
        kind: 'connectionString',
        connectionString: serviceConnectionString,
        hostName,
      }),
      autoProvision: true,
      connectsPerSecond: 50,
      defaultIntervalSeconds: 10,
      log: (line) => lines.push(line),
    });
    service = createServiceClient(serviceConnectionString);
    service.setRetryPolicy(new NoRetry());
    await fleet.connect();
  });

  afterAll(async () => {
    await fleet?.close();
    await hub?.stop();
  });

  it('reports its interval (as the default, 203), firmware and start time on connect', async () => {
    const props = await waitFor('the connect report', async () => {
      const r = await reported();
      return r.telemetryIntervalSeconds ? r : undefined;
    });
    expect(props.telemetryIntervalSeconds).toEqual({
      value: 10,
      ac: 203,
      av: 0,
      ad: 'the device default',
    });
    expect(props.firmwareVersion).toBe('1.0.0');
    expect(Date.parse(String(props.startTime))).not.toBeNaN();
  });

  it('applies a desired interval and acknowledges it with the desired $version', async () => {
    const registry = createRegistry(hub.connection.serviceConnectionString);
    const updated = (
      await registry.updateTwin(
        deviceId,
        { properties: { desired: { telemetryIntervalSeconds: 3 } } },
        '*',
      )
    ).responseBody;
    const version = (updated.properties.desired as { $version: number }).$version;
    const ack = await waitFor('the acknowledgement', async () => {
      const value = (await reported()).telemetryIntervalSeconds as Ack;
      return value.av === version ? value : undefined;
    });
    expect(ack).toEqual({ value: 3, ac: 200, av: version, ad: 'applied' });
    expect(fleet.intervalSeconds(deviceId)).toBe(3);
  });

  it('refuses a bad desired value with a 400 acknowledgement and keeps its interval', async () => {
    const registry = createRegistry(hub.connection.serviceConnectionString);
    const updated = (
      await registry.updateTwin(
        deviceId,
        { properties: { desired: { telemetryIntervalSeconds: -1 } } },
        '*',
      )
    ).responseBody;
    const version = (updated.properties.desired as { $version: number }).$version;
    const ack = await waitFor('the refusal', async () => {
      const value = (await reported()).telemetryIntervalSeconds as Ack;
      return value.av === version ? value : undefined;
    });
    expect(ack).toMatchObject({ value: 3, ac: 400, av: version });
    expect(fleet.intervalSeconds(deviceId)).toBe(3);
  });

  it('answers SetTelemetryInterval: 200 changes the interval and reports it, 400 for a bad value', async () => {
    const ok = await waitFor('the method subscription', async () => {
      try {
        return (await invoke('SetTelemetryInterval', 2)).result;
      } catch {
        return undefined; // not subscribed yet: DeviceNotOnline
      }
    });
    expect(ok).toEqual({ status: 200, payload: { telemetryIntervalSeconds: 2 } });
    expect(fleet.intervalSeconds(deviceId)).toBe(2);
    await waitFor('the reported interval', async () =>
      ((await reported()).telemetryIntervalSeconds as Ack).value === 2 ? true : undefined,
    );
    const bad = (await invoke('SetTelemetryInterval', 'fast')).result;
    expect(bad).toMatchObject({ status: 400 });
    expect(fleet.intervalSeconds(deviceId)).toBe(2);
  });

  it('answers any other method with 404 at once instead of letting the caller time out', async () => {
    const started = Date.now();
    const answer = (await invoke('Reboot', null)).result;
    expect(answer).toEqual({ status: 404, payload: { error: "unknown method 'Reboot'" } });
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});
