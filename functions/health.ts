/** GET /health (anonymous): which backing services answer; 200 when all do, else 503. */
import { app } from '@azure/functions';
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { checkHealth } from '../lib/api/health';
import { routes } from '../lib/api/operations';
import { apiServices, type ApiServices } from '../lib/api/services';
import { errorResponse, jsonResponse } from '../lib/http/respond';

export function createHealthHandler(services: () => ApiServices) {
  return async (_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const report = await checkHealth(services().health, (text) => context.warn(text));
      return jsonResponse(report.status === 'healthy' ? 200 : 503, report, {
        'Cache-Control': 'no-store',
      });
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}

export const healthHandler = createHealthHandler(apiServices);

app.http('health', {
  route: routes.health,
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: healthHandler,
});
