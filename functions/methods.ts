/**
 * Direct-method route: POST /devices/{deviceId}/methods/{methodName}.
 * The logic lives in lib/methods/; this file only registers it.
 */
import { app } from '@azure/functions';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';
import { createMethodHandlers } from '../lib/methods/method-handlers';

export const methodHandlers = createMethodHandlers(() => appRoot.api());

app.http('invokeMethod', {
  route: routes.method,
  methods: ['POST'],
  authLevel: 'function',
  handler: methodHandlers.invoke,
});
