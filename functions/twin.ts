/**
 * Device twin routes: GET/PATCH /devices/{deviceId}/twin.
 * The logic lives in lib/twin/; this file only registers it.
 */
import { app } from '@azure/functions';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';
import { createTwinHandlers } from '../lib/twin/twin-handlers';

export const twinHandlers = createTwinHandlers(() => appRoot.api());

app.http('getTwin', {
  route: routes.twin,
  methods: ['GET'],
  authLevel: 'function',
  handler: twinHandlers.get,
});

app.http('updateTwin', {
  route: routes.twin,
  methods: ['PATCH'],
  authLevel: 'function',
  handler: twinHandlers.update,
});
