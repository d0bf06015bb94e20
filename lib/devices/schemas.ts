/** The device identity routes' request and response shapes (registered for the OpenAPI document). */
import { z } from 'zod';
import { apiSchemas, DeviceId } from '../http/schemas';

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

export type CreateDeviceRequest = z.infer<typeof CreateDeviceRequest>;
export type UpdateDeviceRequest = z.infer<typeof UpdateDeviceRequest>;
export type Device = z.infer<typeof Device>;
export type CreatedDevice = z.infer<typeof CreatedDevice>;
export type DeviceList = z.infer<typeof DeviceList>;
