/** What the telemetry processor produces from one event, before and after storage. */
import type { Reading } from './schema';

/** A valid reading with where it came from (the enrichment). */
export interface TelemetryRecord {
  deviceId: string;
  reading: Reading;
  messageId: string | undefined;
  correlationId: string | undefined;
  enqueuedMs: number;
  partition: string;
  sequenceNumber: bigint;
  offset: string | undefined;
  properties: Record<string, string>;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** True when the body arrived base64-encoded. */
  base64: boolean;
}

/** Stable reason codes for dead letters. */
export type DeadLetterReason =
  | 'missing-device-id'
  | 'invalid-device-id'
  | 'missing-position'
  | 'empty-body'
  | 'invalid-base64'
  | 'invalid-text'
  | 'not-json'
  | 'unsupported-encoding'
  | 'invalid-reading'
  /** A field is larger than a stored reading can hold (the detail names it). */
  | 'field-too-large'
  | 'too-many-properties'
  /** Table storage rejected the reading for good (the detail names the table and error code). */
  | 'storage-rejected';

/** An event that cannot become a reading, with what is needed to investigate it. */
export interface DeadLetter {
  reason: DeadLetterReason;
  detail: string;
  /** The authenticated device when known (even if invalid). */
  deviceId: string | undefined;
  messageId: string | undefined;
  correlationId: string | undefined;
  enqueuedMs: number | undefined;
  partition: string;
  sequenceNumber: bigint | undefined;
  offset: string | undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** The body's first bytes (at most the configured limit). */
  body: Buffer;
  /** The body's full size in bytes. */
  bodySize: number;
  systemProperties: Record<string, unknown>;
  properties: Record<string, string>;
}

export type ProcessedEvent =
  { kind: 'reading'; record: TelemetryRecord } | { kind: 'deadLetter'; letter: DeadLetter };
