/**
 * Shared by the unit tests of the Event Hub-compatible endpoint's parts: decoding an encoded
 * message's sections with their exact AMQP types, a service-policy SAS token for an Event Hub
 * audience, and a minimal telemetry input.
 */
import { createHmac } from 'node:crypto';
import { message as rheaMessage, types, type Message } from 'rhea';
import { wellKnownHubIdentity } from '../../config';
import type { TelemetryInput } from '../../core/contracts';

export const identity = wellKnownHubIdentity;
export const serviceKey = identity.policies.find((p) => p.name === 'service')!.primaryKey;
export const host = 'localhost:5672';

export interface TypedEntry {
  type: string;
  value: unknown;
  elementCode?: number;
}

/** rhea's decoder; its typings leave the Reader class out. */
export const AmqpReader = (
  types as unknown as { Reader: new (buffer: Buffer) => { remaining(): number; read(): unknown } }
).Reader;

/** Decodes an encoded message's map section into key → AMQP type name and value. */
export function mapSection(message: Message, code: number): Map<string, TypedEntry> {
  const reader = new AmqpReader(rheaMessage.encode(message));
  while (reader.remaining()) {
    const section = reader.read() as {
      descriptor: { value: unknown };
      value: Array<{
        type: { name: string };
        value: unknown;
        array_constructor?: { typecode: number };
      }>;
    };
    if (section.descriptor.value !== code) continue;
    const entries = new Map<string, TypedEntry>();
    for (let i = 0; i + 1 < section.value.length; i += 2) {
      const key = section.value[i]!;
      const value = section.value[i + 1]!;
      entries.set(String(key.value), {
        type: value.type.name,
        value: value.value,
        ...(value.array_constructor ? { elementCode: value.array_constructor.typecode } : {}),
      });
    }
    return entries;
  }
  throw new Error(`no section 0x${code.toString(16)}`);
}

export const messageAnnotations = 0x72;
export const deliveryAnnotations = 0x71;
export const applicationProperties = 0x74;
export const amqpValue = 0x77;

export function sasToken(
  audience: string,
  key = serviceKey,
  expiresInSeconds = 3600,
  now = Date.now(),
): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(now / 1000) + expiresInSeconds;
  const sig = createHmac('sha256', Buffer.from(key, 'utf8'))
    .update(`${sr}\n${se}`)
    .digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=service`;
}

export function input(deviceId: string, extra: Partial<TelemetryInput> = {}): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from('{}'),
    properties: {},
    generationId: 'gen-1',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
    ...extra,
  };
}
