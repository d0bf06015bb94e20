/**
 * Continuation tokens the API hands out. They wrap IoT Hub's query continuation in a versioned,
 * base64url envelope: clients treat them as opaque, and the API can change what is inside
 * (or where paging comes from) without breaking them.
 *
 * A token comes back from the client, so it is checked before anything inside it reaches the
 * hub: it must be exactly the encoding this module produces (canonical base64url of
 * `{"v":1,"hub":"..."}`, nothing added), and the hub part must be something an HTTP header can
 * carry (printable ASCII: the SDK sends it as `x-ms-continuation`, so a CR or LF would be header
 * injection). Tokens are not signed: that would need a secret shared by every instance, and a
 * well-formed token the hub does not know is refused by the hub (see `device-handlers.ts`).
 */
import { ApiError } from '../http/problem';

interface Envelope {
  v: 1;
  hub: string;
}

/** Longest hub continuation accepted back; the API's query string allows 8192 characters. */
const maxHubTokenLength = 4096;

/** Visible ASCII and space: what an HTTP header value can carry without escaping. */
const headerSafe = /^[\x20-\x7e]+$/;

export function encodeContinuationToken(hubToken: string): string {
  const envelope: Envelope = { v: 1, hub: hubToken };
  return Buffer.from(JSON.stringify(envelope), 'utf8').toString('base64url');
}

export function invalidContinuationToken(): ApiError {
  return new ApiError(
    'invalidContinuationToken',
    'Pass back the continuationToken of a previous GET /devices response unchanged.',
  );
}

function hubTokenOf(token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const hub = (parsed as Partial<Envelope> | null)?.hub;
  if (typeof hub !== 'string' || hub.length > maxHubTokenLength || !headerSafe.test(hub))
    return undefined;
  // Only the exact bytes this module issues: no extra fields, other versions or re-encodings.
  return encodeContinuationToken(hub) === token ? hub : undefined;
}

/** The hub's continuation inside `token`; a 400 `invalid-continuation-token` for anything else. */
export function decodeContinuationToken(token: string): string {
  const hub = hubTokenOf(token);
  if (hub === undefined) throw invalidContinuationToken();
  return hub;
}
