/**
 * GET /health (anonymous): which backing services answer, and whether the telemetry trigger is
 * stalled; 200 when all services answer (`healthy` or `degraded`), else 503.
 */
import { app } from '@azure/functions';
import { createHealthHandler } from '../lib/app/health';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';

// The telemetry trigger runs in this same worker and records its batches in `appRoot.stall`.
export const healthHandler = createHealthHandler(
  () => appRoot.api(),
  () => appRoot.stall.report(),
);

app.http('health', {
  route: routes.health,
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: healthHandler,
});
