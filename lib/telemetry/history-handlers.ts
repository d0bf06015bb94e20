/**
 * HTTP handlers for a device's alerts and dead letters (./history.ts). Storage failures are
 * a 503 (retry later), like the telemetry read route.
 */
import { queryObject, routeId, validate } from '../http/request';
import { jsonResponse, withProblems, type HttpHandler } from '../http/respond';
import type { EntityStore } from '../storage/entity-store';
import { fromStorage } from './errors';
import { AlertsQuery, DeadLettersQuery, readAlerts, readDeadLetters } from './history';
import { deviceIdSyntax } from '../http/schemas';

export interface HistoryParts {
  store: () => EntityStore;
  /** The alert threshold in force (TELEMETRY_ALERT_THRESHOLD). */
  alertThreshold: () => number;
}

export interface HistoryHandlers {
  alerts: HttpHandler;
  deadLetters: HttpHandler;
}

export function createHistoryHandlers(parts: HistoryParts): HistoryHandlers {
  return {
    alerts: withProblems(async (request, context) => {
      const deviceId = routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
      const query = validate(AlertsQuery, queryObject(request), 'query string');
      const threshold = parts.alertThreshold();
      const items = await fromStorage(
        'history read',
        () => readAlerts(parts.store(), deviceId, query),
        (text) => context.warn(text),
      );
      return jsonResponse(200, { items, threshold });
    }),

    deadLetters: withProblems(async (request, context) => {
      const deviceId = routeId(request, 'deviceId', deviceIdSyntax, 'invalidDeviceId');
      const query = validate(DeadLettersQuery, queryObject(request), 'query string');
      const items = await fromStorage(
        'history read',
        () => readDeadLetters(parts.store(), deviceId, query),
        (text) => context.warn(text),
      );
      return jsonResponse(200, { items });
    }),
  };
}
