/**
 * Request and response shapes of the twin routes; registered in `apiSchemas` so the OpenAPI
 * document shows them. The section rules other than size (names, nesting, string length) are
 * part of the request schema, so they come back as ordinary 400 validation problems.
 */
import { z } from 'zod';
import { apiSchemas, DeviceId, JsonValue } from '../http/schemas';
import { twinSectionIssues, type TwinSectionName } from './limits';

const JsonObject = z.record(z.string(), JsonValue);

function section(name: TwinSectionName) {
  return JsonObject.superRefine((value, context) => {
    for (const issue of twinSectionIssues(value, name)) {
      // The issue path already starts with the section name; report it below that.
      context.addIssue({
        code: 'custom',
        message: issue.message,
        path: issue.path.split('.').slice(1),
      });
    }
  });
}

export const UpdateTwinRequest = z
  .strictObject({
    tags: section('tags')
      .optional()
      .describe('Merged into the tags (JSON merge patch: null removes a property). At most 8 KB.'),
    desired: section('desired')
      .optional()
      .describe(
        'Merged into the desired properties (null removes a property). At most 32 KB; names without ".", "$" or spaces; at most 10 levels.',
      ),
  })
  .refine((patch) => patch.tags !== undefined || patch.desired !== undefined, {
    message: 'send tags, desired, or both',
  });
apiSchemas.add(UpdateTwinRequest, { id: 'UpdateTwinRequest' });

export const TwinProperties = z.object({
  version: z.int().describe('The section version ($version): each change increments it.'),
  lastUpdated: z.string().optional().describe('ISO 8601: when the section last changed.'),
  properties: JsonObject.describe('The properties, without IoT Hub metadata.'),
});
apiSchemas.add(TwinProperties, { id: 'TwinProperties' });

export const DeviceTwin = z.object({
  deviceId: DeviceId,
  etag: z.string().describe('Send it back in If-Match to update this version only.'),
  version: z.int().optional().describe('The twin version.'),
  status: z.string().optional(),
  connectionState: z.string().optional(),
  lastActivityTime: z.string().optional(),
  tags: JsonObject,
  desired: TwinProperties,
  reported: TwinProperties,
});
apiSchemas.add(DeviceTwin, { id: 'DeviceTwin' });

export type UpdateTwinRequest = z.infer<typeof UpdateTwinRequest>;
export type TwinProperties = z.infer<typeof TwinProperties>;
export type DeviceTwin = z.infer<typeof DeviceTwin>;
