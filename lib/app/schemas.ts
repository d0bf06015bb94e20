/** The health report's shape (registered for the OpenAPI document). */
import { z } from 'zod';
import { apiSchemas } from '../http/schemas';

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

export type Health = z.infer<typeof Health>;
export type ServiceState = z.infer<typeof ServiceState>;
