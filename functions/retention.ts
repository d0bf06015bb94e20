/**
 * Telemetry retention: a timer that deletes readings, alerts and dead letters older than
 * TELEMETRY_RETENTION_DAYS, a bounded amount per run (lib/telemetry/retention.ts).
 */
import { app } from '@azure/functions';
import { loadSettings, SettingNames } from '../lib/settings';
import { TableEntityStore } from '../lib/storage/table-entity-store';
import { createRetentionTimer, type RetentionServices } from '../lib/telemetry/retention';

// Created on first run (not at load), so a settings error surfaces in that run's log.
let services: RetentionServices | undefined;
function getServices(): RetentionServices {
  if (services === undefined) {
    const settings = loadSettings();
    services = {
      store: TableEntityStore.fromSettings(settings.storage),
      retentionDays: settings.telemetry.retentionDays,
      now: Date.now,
    };
  }
  return services;
}

export const retentionTimer = createRetentionTimer(getServices);

app.timer('telemetryRetention', {
  schedule: `%${SettingNames.purgeSchedule}%`,
  handler: retentionTimer,
});
