/**
 * Device identity routes: POST/GET /devices, GET/PATCH/DELETE /devices/{deviceId}.
 * The logic lives in lib/devices/device-handlers.ts; this file only registers it.
 */
import { app } from '@azure/functions';
import { createDeviceHandlers } from '../lib/devices/device-handlers';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';

export const deviceHandlers = createDeviceHandlers(() => appRoot.api());

app.http('createDevice', {
  route: routes.devices,
  methods: ['POST'],
  authLevel: 'function',
  handler: deviceHandlers.create,
});

app.http('listDevices', {
  route: routes.devices,
  methods: ['GET'],
  authLevel: 'function',
  handler: deviceHandlers.list,
});

app.http('getDevice', {
  route: routes.device,
  methods: ['GET'],
  authLevel: 'function',
  handler: deviceHandlers.get,
});

app.http('updateDevice', {
  route: routes.device,
  methods: ['PATCH'],
  authLevel: 'function',
  handler: deviceHandlers.update,
});

app.http('deleteDevice', {
  route: routes.device,
  methods: ['DELETE'],
  authLevel: 'function',
  handler: deviceHandlers.remove,
});
