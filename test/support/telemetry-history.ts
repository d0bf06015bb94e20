/**
 * A telemetry history spanning the retention cutoff, for the retention tests (in-memory and
 * Azurite): per device, readings above the alert threshold and undecodable events (dead
 * letters) on both sides of `now - 7 days`, a device that only ever sent garbage (so it has no
 * `devicestate` row) and events without a device id (the unattributed dead-letter partition).
 */
import { sampleBatch, type SampleEvent } from '../../lib/telemetry/sample-events';

export const dayMs = 86_400_000;
export const retentionDays = 7;
/** Above the processor's threshold in these tests, so every reading is also an alert. */
export const alertThreshold = 15;

export const readingDevices = ['dev-a', 'dev#b'] as const;
export const garbageOnlyDevice = 'garbage-only';

/** Enqueue ages (ms before `now`) of what each reading device sends. */
const readingAges = [10 * dayMs, 8 * dayMs, 7 * dayMs + 1, 7 * dayMs, 1 * dayMs];
const garbageAges = [9 * dayMs, 2 * dayMs];

/** What a purge at `now` with 7 days' retention keeps: everything enqueued at or after the cutoff. */
export const keptPerReadingDevice = { readings: 2, deadLetters: 1 };

function reading(deviceId: string, at: number, sequenceNumber: number): SampleEvent {
  return {
    deviceId,
    body: Buffer.from(JSON.stringify({ windSpeed: alertThreshold + 5 })),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    sequenceNumber,
    enqueuedTime: new Date(at),
  };
}

function garbage(deviceId: string | undefined, at: number, sequenceNumber: number): SampleEvent {
  return {
    ...(deviceId === undefined ? {} : { deviceId }),
    body: Buffer.from('not json'),
    sequenceNumber,
    enqueuedTime: new Date(at),
  };
}

/** The history as one trigger batch (partition 0), every event enqueued relative to `nowMs`. */
export function historyBatch(nowMs: number): ReturnType<typeof sampleBatch> {
  const events: SampleEvent[] = [];
  const next = () => events.length;
  for (const device of readingDevices) {
    for (const age of readingAges) events.push(reading(device, nowMs - age, next()));
    for (const age of garbageAges) events.push(garbage(device, nowMs - age, next()));
  }
  for (const age of garbageAges) events.push(garbage(garbageOnlyDevice, nowMs - age, next()));
  for (const age of garbageAges) events.push(garbage(undefined, nowMs - age, next()));
  return sampleBatch(events);
}

/** Rows per table after writing `historyBatch(now)` and purging at `now`. */
export const expectedAfterPurge = {
  telemetry: readingDevices.length * keptPerReadingDevice.readings,
  alerts: readingDevices.length * keptPerReadingDevice.readings,
  // One newer dead letter per device, the garbage-only device and the unattributed partition.
  deadletters: readingDevices.length + 2,
  devicestate: readingDevices.length,
};

/** Rows per table right after writing `historyBatch`. */
export const expectedBeforePurge = {
  telemetry: readingDevices.length * readingAges.length,
  alerts: readingDevices.length * readingAges.length,
  deadletters: (readingDevices.length + 2) * garbageAges.length,
  devicestate: readingDevices.length,
};
