/**
 * The simulated device fleet as a timer function. The fleet (one MQTT client per device) lives
 * across invocations in this instance; each tick connects what is down and sends one telemetry
 * message from each connected device whose interval (its twin's or a direct method's, else the
 * tick) has elapsed. Disabled unless SIMULATOR_ENABLED is true.
 */
import { app } from '@azure/functions';
import type { InvocationContext, Timer } from '@azure/functions';
import { registryFromSettings } from '../lib/iothub/clients';
import { DeviceFleet, fleetDeviceIds } from '../lib/simulator/fleet';
import { scheduleIntervalSeconds } from '../lib/simulator/schedule';
import { loadSettings, SettingNames } from '../lib/settings';

let fleet: DeviceFleet | undefined;
/** Fleet events between ticks (C2D received, disconnects) go to the latest invocation's log. */
let log: (line: string) => void = (line) => console.log(line);
let reportedDisabled = false;

export async function simulatorTick(_timer: Timer, context: InvocationContext): Promise<void> {
  const settings = loadSettings();
  if (!settings.simulator.enabled) {
    if (!reportedDisabled)
      context.log(`simulator: disabled (${SettingNames.simulatorEnabled} is not true)`);
    reportedDisabled = true;
    return;
  }
  log = (line) => context.log(line);
  fleet ??= new DeviceFleet({
    hubHostName: settings.iotHub.hostName,
    deviceIds: fleetDeviceIds(settings.simulator.devicePrefix, settings.simulator.deviceCount),
    registry: registryFromSettings(settings.iotHub),
    autoProvision: settings.simulator.autoProvision,
    connectsPerSecond: settings.simulator.connectsPerSecond,
    // Devices start at the tick; a twin or method can lengthen it (in whole ticks, see docs).
    defaultIntervalSeconds: scheduleIntervalSeconds(settings.simulator.schedule) ?? 10,
    log: (line) => log(line),
  });
  const stats = await fleet.tick();
  context.log(
    `simulator: ${stats.connected}/${stats.devices} devices connected; ${stats.sent} sent, ${stats.acknowledged} acknowledged, ${stats.c2dReceived} C2D received, ${stats.errors} errors so far`,
  );
}

/** Closes the fleet's connections (host shutdown, tests). */
export async function stopSimulator(): Promise<void> {
  const current = fleet;
  fleet = undefined;
  await current?.close();
}

app.timer('simulator', {
  schedule: `%${SettingNames.simulatorSchedule}%`,
  handler: simulatorTick,
});
