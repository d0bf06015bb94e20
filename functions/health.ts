/** GET /health (anonymous): which backing services answer; 200 when all do, else 503. */
import { app } from '@azure/functions';
import { createHealthHandler } from '../lib/api/health';
import { routes } from '../lib/api/operations';
import { apiServices } from '../lib/api/services';

export const healthHandler = createHealthHandler(apiServices);

app.http('health', {
  route: routes.health,
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: healthHandler,
});
