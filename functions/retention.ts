/**
 * Telemetry retention: a timer that deletes readings, alerts and dead letters older than
 * TELEMETRY_RETENTION_DAYS, a bounded amount per run (lib/telemetry/retention.ts).
 */
import { app } from '@azure/functions';
import { appRoot } from '../lib/app/services';
import { SettingNames } from '../lib/settings';
import { createRetentionTimer } from '../lib/telemetry/retention';

// Built on first run (not at load), so a settings error surfaces in that run's log.
export const retentionTimer = createRetentionTimer(() => appRoot.retention());

app.timer('telemetryRetention', {
  schedule: `%${SettingNames.purgeSchedule}%`,
  handler: retentionTimer,
});
