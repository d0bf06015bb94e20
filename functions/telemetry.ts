/**
 * Telemetry: the Event Hub trigger on the IoT Hub's built-in endpoint that stores readings, and
 * `GET /api/devices/{deviceId}/telemetry` that reads them back. Logic lives in `lib/telemetry`.
 */
import { app } from '@azure/functions';
import { loadSettings } from '../lib/settings';
import type { EntityStore } from '../lib/storage/entity-store';
import { TelemetryProcessor } from '../lib/telemetry/processor';
import { createTelemetryReadHandler } from '../lib/telemetry/http';
import { createTelemetryHandler, telemetryTriggerOptions } from '../lib/telemetry/trigger';

// Created on first use (not at load), once per instance: settings errors surface in the first
// invocation's log, and table clients and the device-state cache are reused across batches.
let processor: TelemetryProcessor | undefined;
function getProcessor(): TelemetryProcessor {
  processor ??= TelemetryProcessor.fromSettings(loadSettings());
  return processor;
}
function getStore(): EntityStore {
  return getProcessor().store;
}

export const processTelemetry = createTelemetryHandler(getProcessor);
export const getTelemetry = createTelemetryReadHandler(getStore);

app.eventHub('telemetry', telemetryTriggerOptions(processTelemetry));

app.http('getTelemetry', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'devices/{deviceId}/telemetry',
  handler: getTelemetry,
});
