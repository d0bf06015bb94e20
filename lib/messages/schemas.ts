/** The cloud-to-device routes' request and response shapes (registered for the OpenAPI document). */
import { z } from 'zod';
import { apiSchemas, DeviceId, JsonValue, MessageId } from '../http/schemas';

export const AckMode = z
  .enum(['none', 'positive', 'negative', 'full'])
  .describe(
    'Which delivery outcomes IoT Hub reports as feedback: positive = delivered, negative = expired/rejected/dead-lettered, full = both.',
  );
apiSchemas.add(AckMode, { id: 'AckMode' });

export const minTtlSeconds = 60;
export const maxTtlSeconds = 172800;

/** IoT Hub allows only these in C2D property names and values: ASCII letters, digits and !#$%&'*+-.^_`|~ */
const tokenCharacters = "ASCII letters, digits and !#$%&'*+-.^_`|~";

const propertyName = z
  .string()
  .regex(
    /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,128}$/,
    `a property name must be 1 to 128 of ${tokenCharacters}`,
  )
  .refine(
    (name) => !/^(iothub-|\$)/i.test(name),
    'property names starting with "iothub-" or "$" are reserved',
  );

export const SendMessageRequest = z.strictObject({
  payload: JsonValue.describe(
    'A string is sent as UTF-8 text; any other JSON value as UTF-8 JSON (application/json).',
  ),
  messageId: MessageId.optional().describe('Generated (a UUID) when absent.'),
  correlationId: MessageId.optional(),
  properties: z
    .record(
      propertyName,
      z
        .string()
        .regex(
          /^[A-Za-z0-9!#$%&'*+\-.^_`|~]*$/,
          `a property value may hold only ${tokenCharacters}`,
        ),
    )
    .optional()
    .describe(
      `Application properties the device receives with the message: names and values of ${tokenCharacters}. The whole message (payload, ids, content type and these names and values) is limited to 64 KB.`,
    ),
  ack: AckMode.optional().describe('Defaults to none (no feedback).'),
  ttlSeconds: z
    .int()
    .min(minTtlSeconds)
    .max(maxTtlSeconds)
    .optional()
    .describe("Expiry; the hub's default TTL (one hour) applies when absent."),
  contentType: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+(\s*;\s*[\x21-\x7e]+)*$/, 'a media type such as text/plain')
    .optional()
    .describe('Defaults to application/json for JSON payloads, text/plain for strings.'),
});
apiSchemas.add(SendMessageRequest, { id: 'SendMessageRequest' });

export const maxWaitSeconds = 60;

export const SendMessageQuery = z.strictObject({
  wait: z.coerce
    .number()
    .int()
    .min(0)
    .max(maxWaitSeconds)
    .optional()
    .describe(
      `Seconds (at most ${maxWaitSeconds}) to wait for the delivery outcome: 200 with it, or 202 if none arrived.`,
    ),
});

export const MessageState = z.enum([
  'enqueued',
  'delivered',
  'rejected',
  'expired',
  'deliveryCountExceeded',
  'purged',
]);
apiSchemas.add(MessageState, { id: 'MessageState' });

export const MessageAccepted = z.object({
  messageId: MessageId,
  status: z.literal('enqueued'),
  statusUrl: z.string().describe('GET it for the delivery outcome.'),
});
apiSchemas.add(MessageAccepted, { id: 'MessageAccepted' });

export const MessageStatus = z.object({
  messageId: MessageId,
  deviceId: DeviceId,
  status: MessageState,
  ack: AckMode.optional(),
  enqueuedAt: z.string().optional().describe('When the back end handed the message to IoT Hub.'),
  updatedAt: z.string().describe('When this record last changed.'),
  description: z.string().optional().describe("IoT Hub's feedback description."),
});
apiSchemas.add(MessageStatus, { id: 'MessageStatus' });

export type SendMessageRequest = z.infer<typeof SendMessageRequest>;
export type AckMode = z.infer<typeof AckMode>;
export type MessageState = z.infer<typeof MessageState>;
export type MessageAccepted = z.infer<typeof MessageAccepted>;
export type MessageStatus = z.infer<typeof MessageStatus>;
