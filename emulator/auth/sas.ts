/**
 * Shared access signature verification for every protocol surface.
 *
 * Token: `SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>[&skn=<policy>]`.
 * The signature is HMAC-SHA256 over `<sr as it appears>\n<se>`. The IoT Hub SDKs key the HMAC
 * with the base64-decoded key; @azure/event-hubs with the key string's UTF-8 bytes, so both are
 * tried where one key serves both. Nothing here ever puts a key, signature or token in an error.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { HubHostCheck } from './hosts';
import { HubError } from '../core/contracts';
import type { HubIdentity, PolicyRight, SharedAccessPolicy } from '../config';

export interface SasToken {
  /** As it appears in the token (still URL-encoded). */
  sr: string;
  /** Decoded signature (base64 text). */
  sig: string;
  se: number;
  skn?: string;
}

const prefix = 'SharedAccessSignature ';

export function parseSasToken(token: string): SasToken {
  if (!token.startsWith(prefix)) throw unauthorized('not a SharedAccessSignature token');
  const fields = new Map<string, string>();
  for (const part of token.slice(prefix.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw unauthorized('malformed SharedAccessSignature token');
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  if (!sr || !sig || !se || !/^\d+$/.test(se)) {
    throw unauthorized('SharedAccessSignature token needs sr, sig and se');
  }
  const skn = fields.get('skn');
  let decodedSig: string;
  try {
    decodedSig = decodeURIComponent(sig);
  } catch {
    throw unauthorized('malformed SharedAccessSignature signature');
  }
  return { sr, sig: decodedSig, se: Number(se), ...(skn ? { skn: decodeURIComponent(skn) } : {}) };
}

function unauthorized(message: string): HubError {
  return new HubError('Unauthorized', message);
}

function signatureMatches(token: SasToken, keys: readonly Buffer[]): boolean {
  const expected = Buffer.from(token.sig, 'base64');
  const toSign = `${token.sr}\n${token.se}`;
  return keys.some((key) => {
    const actual = createHmac('sha256', key).update(toSign).digest();
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  });
}

function checkExpiry(token: SasToken, nowMs: number): void {
  if (token.se * 1000 <= nowMs) throw unauthorized('SharedAccessSignature token has expired');
}

function decodeResource(sr: string): string {
  try {
    return decodeURIComponent(sr);
  } catch {
    throw unauthorized('malformed SharedAccessSignature resource');
  }
}

const modulePath = /\/devices\/[^/]+\/modules\/[^/]+\/?$/i;

/**
 * Module identities (IoT Edge) are not served: a module's token (`sr=<host>/devices/<id>/modules/
 * <module>`) is answered as not implemented (501, `amqp:not-implemented`), never as a 401 that
 * would send its owner hunting for a wrong key.
 */
export function refuseModuleResource(sr: string): void {
  if (modulePath.test(decodeResource(sr))) {
    throw new HubError(
      'NotImplemented',
      'module identities (IoT Edge) are not supported by the local IoT Hub',
    );
  }
}

/**
 * Does `sr` name `<host>/devices/<deviceId>`? The Node SDKs URL-encode the whole resource once
 * (`a+b` → `…%2Fdevices%2Fa%2Bb`); the .NET SDK encodes the id first and the resource again
 * (`…%2Fdevices%2Fa%252Bb`). IoT Hub takes both, so the path is compared after one decode and
 * after two. A second decode that is not valid percent-encoding (an id such as `e%f` decoded
 * once already) is simply no match.
 */
function resourceNamesDevice(sr: string, deviceId: string): boolean {
  const resource = decodeResource(sr);
  const slash = resource.indexOf('/');
  const path = slash < 0 ? '' : resource.slice(slash);
  const wanted = `/devices/${deviceId}`;
  if (path === wanted) return true;
  try {
    return decodeURIComponent(path) === wanted;
  } catch {
    return false;
  }
}

/**
 * A device's own token: resource `<host>/devices/<id>` (URL-encoded), signed with one of the
 * device's keys (base64-decoded).
 */
export function verifyDeviceToken(
  tokenText: string,
  device: { deviceId: string; keys: { primaryKey: string; secondaryKey: string } },
  nowMs: number,
  namesThisHub: HubHostCheck,
): void {
  const token = parseSasToken(tokenText);
  // Signed with the right key for the same device id, but for another hub: IoT Hub refuses it.
  if (!namesThisHub(token.sr)) throw unauthorized('token resource (sr) names another hub');
  refuseModuleResource(token.sr);
  if (!resourceNamesDevice(token.sr, device.deviceId)) {
    throw unauthorized('token resource does not name this device');
  }
  const keys = [device.keys.primaryKey, device.keys.secondaryKey]
    .filter((k) => k !== '')
    .map((k) => Buffer.from(k, 'base64'));
  if (!signatureMatches(token, keys))
    throw unauthorized('token signature does not match the device key');
  checkExpiry(token, nowMs);
}

/** Both key encodings: the IoT Hub SDKs decode the key, @azure/event-hubs uses its UTF-8 bytes. */
function policyKeys(policy: SharedAccessPolicy): Buffer[] {
  const texts = [policy.primaryKey, policy.secondaryKey];
  return [
    ...texts.map((k) => Buffer.from(k, 'base64')),
    ...texts.map((k) => Buffer.from(k, 'utf8')),
  ];
}

/** The policy `skn` names, if the token is signed with its key, unexpired, and the policy holds `right`. */
function verifyPolicyToken(
  token: SasToken,
  identity: HubIdentity,
  right: PolicyRight,
  nowMs: number,
): SharedAccessPolicy {
  const policy = identity.policies.find((p) => p.name === token.skn);
  if (!policy) throw unauthorized('token names no known shared access policy');
  if (!signatureMatches(token, policyKeys(policy))) {
    throw unauthorized('token signature does not match the policy key');
  }
  checkExpiry(token, nowMs);
  if (!policy.rights.includes(right)) throw unauthorized(`policy lacks the ${right} right`);
  return policy;
}

/**
 * A service token (azure-iothub): resource is the hub host, `skn` names a policy that must hold
 * `right`. Returns the policy.
 */
export function verifyServiceToken(
  tokenText: string,
  identity: HubIdentity,
  right: PolicyRight,
  nowMs: number,
): SharedAccessPolicy {
  return verifyPolicyToken(parseSasToken(tokenText), identity, right, nowMs);
}

/**
 * An Event Hub token (@azure/event-hubs or the .NET client) for an audience such as
 * `sb://host:port/<hub>/ConsumerGroups/$Default/Partitions/0`; only paths are compared.
 */
export function verifyEventHubToken(
  tokenText: string,
  identity: HubIdentity,
  audience: string,
  nowMs: number,
): SharedAccessPolicy {
  const token = parseSasToken(tokenText);
  const policy = verifyPolicyToken(token, identity, 'ServiceConnect', nowMs);
  const pathOf = (uri: string) =>
    decodeResource(uri)
      .replace(/^[a-z]+:\/\/[^/]*/i, '')
      .replace(/^\/+|\/+$/g, '')
      .toLowerCase();
  const granted = pathOf(token.sr);
  const wanted = pathOf(audience);
  if (granted !== '' && wanted !== granted && !wanted.startsWith(`${granted}/`)) {
    throw unauthorized('token resource does not cover the requested entity');
  }
  return policy;
}
