/**
 * GET /health (anonymous): which backing services answer, and whether the telemetry trigger is
 * stalled; 200 when all services answer (`healthy` or `degraded`), else 503.
 */
import { app } from '@azure/functions';
import { createHealthHandler } from '../lib/app/health';
import { routes } from '../lib/app/operations';
import { apiServices } from '../lib/app/services';
import { telemetryStall } from '../lib/telemetry/stall';

// The telemetry trigger runs in this same worker and records its batches in `telemetryStall`.
export const healthHandler = createHealthHandler(apiServices, () => telemetryStall.report());

app.http('health', {
  route: routes.health,
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: healthHandler,
});
