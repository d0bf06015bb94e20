/**
 * A device's alerts and dead letters: GET /devices/{deviceId}/alerts and
 * GET /devices/{deviceId}/deadletters. Logic in lib/telemetry/history-handlers.ts.
 */
import { app } from '@azure/functions';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';
import { createHistoryHandlers } from '../lib/telemetry/history-handlers';

export const historyHandlers = createHistoryHandlers(appRoot.history());

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
