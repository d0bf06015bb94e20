/**
 * Overriding the well-known credentials: `--identity FILE` reads a JSON hub identity
 * (`{"hubName": "...", "policies": [{"name", "primaryKey", "secondaryKey", "rights"}]}`),
 * validated so a typo fails at start with a message naming the field — never echoing a key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { HubIdentity } from './config';

const base64Key = z
  .string()
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64')
  .refine((k) => Buffer.from(k, 'base64').length >= 16, 'must decode to at least 16 bytes');

const identitySchema = z.object({
  hubName: z.string().regex(/^[A-Za-z0-9-]{3,50}$/, 'must be 3-50 letters, digits or hyphens'),
  policies: z
    .array(
      z.object({
        name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
        primaryKey: base64Key,
        secondaryKey: base64Key,
        rights: z
          .array(z.enum(['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect']))
          .min(1),
      }),
    )
    .min(1)
    .refine((ps) => ps.some((p) => p.name === 'iothubowner'), 'needs an iothubowner policy'),
});

export function readIdentityFile(file: string): HubIdentity {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const why = error instanceof SyntaxError ? 'not valid JSON' : 'unreadable';
    throw new Error(`identity file ${file} is ${why}`);
  }
  const parsed = identitySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `identity file ${file}: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'invalid'}`,
    );
  }
  return parsed.data;
}
