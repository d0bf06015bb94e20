/**
 * Continuation tokens the API hands out. They wrap IoT Hub's query continuation in a versioned,
 * base64url envelope: clients treat them as opaque, and the API can change what is inside
 * (or where paging comes from) without breaking them.
 */
import { ApiError } from '../http/problem';

interface Envelope {
  v: 1;
  hub: string;
}

export function encodeContinuationToken(hubToken: string): string {
  const envelope: Envelope = { v: 1, hub: hubToken };
  return Buffer.from(JSON.stringify(envelope), 'utf8').toString('base64url');
}

export function decodeContinuationToken(token: string): string {
  const invalid = new ApiError(
    'invalidContinuationToken',
    'Pass back the continuationToken of a previous GET /devices response unchanged.',
  );
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  const envelope = parsed as Partial<Envelope> | null;
  if (
    typeof envelope !== 'object' ||
    envelope === null ||
    envelope.v !== 1 ||
    typeof envelope.hub !== 'string' ||
    envelope.hub === ''
  ) {
    throw invalid;
  }
  return envelope.hub;
}
