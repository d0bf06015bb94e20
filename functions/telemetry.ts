/**
 * Telemetry: the Event Hub trigger on the IoT Hub's built-in endpoint that stores readings, and
 * `GET /api/devices/{deviceId}/telemetry` that reads them back. Logic lives in `lib/telemetry`.
 */
import { app } from '@azure/functions';
import { routes } from '../lib/app/operations';
import { appRoot } from '../lib/app/services';
import { createTelemetryReadHandler } from '../lib/telemetry/http';
import { createTelemetryHandler, telemetryTriggerOptions } from '../lib/telemetry/trigger';

// The processor is built on first use (not at load), once per instance: settings errors surface
// in the first invocation's log, and table clients and the device-state cache are reused.
export const processTelemetry = createTelemetryHandler(() => appRoot.telemetry(), appRoot.stall);
export const getTelemetry = createTelemetryReadHandler(() => appRoot.tables());

app.eventHub('telemetry', telemetryTriggerOptions(processTelemetry));

app.http('getTelemetry', {
  methods: ['GET'],
  authLevel: 'function',
  route: routes.telemetry,
  handler: getTelemetry,
});
