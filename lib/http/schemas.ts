/**
 * Schemas every API slice shares: the registry whose entries become the OpenAPI document's
 * components, the id and JSON value shapes, and the problem body. The same zod schemas validate
 * requests (strict: unknown fields are errors) and generate the document, so the document cannot
 * drift from what the code accepts and returns. Each slice (devices/, messages/, twin/, methods/,
 * telemetry/) declares its own schemas next to its handlers and registers them here.
 */
import { z } from 'zod';
import {
  deviceIdPattern,
  deviceIdRule,
  deviceIdSyntax,
  messageIdPattern,
  messageIdRule,
  messageIdSyntax,
} from '../iothub/ids';

/** Schemas that become `#/components/schemas/<id>` in the OpenAPI document. */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

export { deviceIdSyntax, messageIdSyntax };

export const DeviceId = z
  .string()
  .regex(deviceIdPattern, `a device id must be ${deviceIdRule}`)
  .describe(`IoT Hub device id: ${deviceIdRule}.`);
apiSchemas.add(DeviceId, { id: 'DeviceId' });

export const MessageId = z
  .string()
  .regex(messageIdPattern, `a message id must be ${messageIdRule}`)
  .describe(`Message or correlation id: ${messageIdRule}.`);
apiSchemas.add(MessageId, { id: 'MessageId' });

export const JsonValue = z.json();
apiSchemas.add(JsonValue, { id: 'JsonValue', description: 'Any JSON value.' });

export const Problem = z.object({
  type: z.string().describe('Stable URI naming the kind of problem.'),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  errors: z
    .array(z.object({ path: z.string(), message: z.string() }))
    .optional()
    .describe('For validation failures: each offending field.'),
});
apiSchemas.add(Problem, { id: 'Problem', description: 'RFC 9457 problem details.' });
