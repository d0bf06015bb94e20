/**
 * The API's request and response shapes. The same zod schemas validate requests (strict: unknown
 * fields are errors) and, registered in `apiSchemas`, generate the OpenAPI document, so the
 * document cannot drift from what the code accepts and returns.
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

export const DeviceStatus = z.enum(['enabled', 'disabled']);
apiSchemas.add(DeviceStatus, { id: 'DeviceStatus' });

export const CreateDeviceRequest = z.strictObject({
  deviceId: DeviceId.optional().describe('Generated (a UUID) when absent.'),
  status: DeviceStatus.optional().describe('Defaults to enabled.'),
});
apiSchemas.add(CreateDeviceRequest, { id: 'CreateDeviceRequest' });

export const UpdateDeviceRequest = z.strictObject({
  status: DeviceStatus,
  statusReason: z.string().max(128).optional(),
});
apiSchemas.add(UpdateDeviceRequest, { id: 'UpdateDeviceRequest' });

export const Device = z.object({
  deviceId: DeviceId,
  status: DeviceStatus,
  statusReason: z.string().optional(),
  etag: z.string().describe('Send it back in If-Match to update only this version.'),
  connectionState: z.enum(['Connected', 'Disconnected']),
  lastActivityTime: z.string().optional().describe('ISO 8601; absent when never active.'),
  cloudToDeviceMessageCount: z.int().min(0).describe('Pending cloud-to-device messages.'),
});
apiSchemas.add(Device, { id: 'Device' });

export const CreatedDevice = Device.extend({
  primaryKey: z.string().describe('Base64 symmetric key. Returned only by this response.'),
  secondaryKey: z.string().describe('Base64 symmetric key. Returned only by this response.'),
  connectionString: z
    .string()
    .describe('HostName=<hub>;DeviceId=<id>;SharedAccessKey=<primaryKey>, for the device SDKs.'),
});
apiSchemas.add(CreatedDevice, { id: 'CreatedDevice' });

export const DeviceList = z.object({
  items: z.array(Device),
  continuationToken: z
    .string()
    .optional()
    .describe('Present when more devices exist: pass it back to get the next page.'),
});
apiSchemas.add(DeviceList, { id: 'DeviceList' });

export const maxPageSize = 1000;
export const defaultPageSize = 100;

/** Query strings arrive as text; these coerce and bound them. */
export const ListDevicesQuery = z.strictObject({
  continuationToken: z
    .string()
    .min(1)
    .max(8192)
    .optional()
    .describe('From the previous page; opaque.'),
  pageSize: z.coerce
    .number()
    .int()
    .min(1)
    .max(maxPageSize)
    .optional()
    .describe(`Devices per page (1 to ${maxPageSize}, default ${defaultPageSize}).`),
});

export const AckMode = z
  .enum(['none', 'positive', 'negative', 'full'])
  .describe(
    'Which delivery outcomes IoT Hub reports as feedback: positive = delivered, negative = expired/rejected/dead-lettered, full = both.',
  );
apiSchemas.add(AckMode, { id: 'AckMode' });

export const JsonValue = z.json();
apiSchemas.add(JsonValue, { id: 'JsonValue', description: 'Any JSON value.' });

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

export const ServiceState = z.object({
  status: z.enum(['up', 'down']),
  detail: z.string().optional(),
});
apiSchemas.add(ServiceState, { id: 'ServiceState' });

export const PipelineState = z.object({
  status: z.enum(['ok', 'degraded']),
  reason: z
    .enum(['throttled', 'timeout', 'unreachable', 'server-error', 'auth', 'unexpected', 'rejected'])
    .optional()
    .describe('The class of the failure that keeps the pipeline retrying.'),
  detail: z.string().optional(),
});
apiSchemas.add(PipelineState, { id: 'PipelineState' });

export const Health = z.object({
  status: z
    .enum(['healthy', 'degraded', 'unhealthy'])
    .describe('`degraded`: every service answers but the telemetry trigger is stuck retrying.'),
  services: z.object({
    iotHubRegistry: ServiceState,
    iotHubService: ServiceState,
    storage: ServiceState,
  }),
  telemetry: PipelineState.optional().describe(
    'Present when the telemetry trigger has retried the same batch for longer than TELEMETRY_STALL_SECONDS.',
  ),
});
apiSchemas.add(Health, { id: 'Health' });

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

export type CreateDeviceRequest = z.infer<typeof CreateDeviceRequest>;
export type UpdateDeviceRequest = z.infer<typeof UpdateDeviceRequest>;
export type Device = z.infer<typeof Device>;
export type CreatedDevice = z.infer<typeof CreatedDevice>;
export type DeviceList = z.infer<typeof DeviceList>;
export type SendMessageRequest = z.infer<typeof SendMessageRequest>;
export type AckMode = z.infer<typeof AckMode>;
export type MessageState = z.infer<typeof MessageState>;
export type MessageAccepted = z.infer<typeof MessageAccepted>;
export type MessageStatus = z.infer<typeof MessageStatus>;
export type Health = z.infer<typeof Health>;
export type ServiceState = z.infer<typeof ServiceState>;
