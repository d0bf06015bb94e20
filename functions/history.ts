/**
 * A device's alerts and dead letters: GET /devices/{deviceId}/alerts and
 * GET /devices/{deviceId}/deadletters. Logic in lib/api/history-handlers.ts.
 */
import { app } from '@azure/functions';
import { createHistoryHandlers } from '../lib/telemetry/history-handlers';
import { routes } from '../lib/app/operations';
import { loadSettings, type Settings } from '../lib/settings';
import type { EntityStore } from '../lib/storage/entity-store';
import { TableEntityStore } from '../lib/storage/table-entity-store';

// Created on first use, so loading this file needs no settings.
let settings: Settings | undefined;
let store: EntityStore | undefined;
function currentSettings(): Settings {
  settings ??= loadSettings();
  return settings;
}

export const historyHandlers = createHistoryHandlers({
  store: () => {
    store ??= TableEntityStore.fromSettings(currentSettings().storage);
    return store;
  },
  alertThreshold: () => currentSettings().telemetry.alertThreshold,
});

app.http('getAlerts', {
  route: routes.alerts,
  methods: ['GET'],
  authLevel: 'function',
  handler: historyHandlers.alerts,
});

app.http('getDeadLetters', {
  route: routes.deadLetters,
  methods: ['GET'],
  authLevel: 'function',
  handler: historyHandlers.deadLetters,
});
