/**
 * The health report: one cheap call to each backing service, all at once, each bounded by a
 * short timeout so the endpoint answers quickly even when a service hangs.
 */
import { errorResponse, jsonResponse, type HttpHandler } from '../http/respond';
import type { Health, ServiceState } from './schemas';
import { describeError } from '../http/redact';
import { HubTimeoutError, withHubTimeout } from '../iothub/errors';
import { hubErrorToApiError } from '../http/hub-errors';
import type { PipelineState } from '../telemetry/stall';

export interface HealthProbes {
  iotHubRegistry(): Promise<void>;
  iotHubService(): Promise<void>;
  storage(): Promise<void>;
}

export const healthTimeoutMs = 5_000;

function reason(error: unknown, timeoutMs: number): string {
  if (error instanceof HubTimeoutError) return `no answer within ${timeoutMs} ms`;
  const mapped = hubErrorToApiError(error, 'The probe');
  return mapped ? mapped.title() : 'unexpected error';
}

async function probe(
  name: string,
  check: () => Promise<void>,
  timeoutMs: number,
  log: (text: string) => void,
): Promise<ServiceState> {
  try {
    await withHubTimeout(`The ${name} health probe`, timeoutMs, check());
    return { status: 'up' };
  } catch (error) {
    const detail = reason(error, timeoutMs);
    log(`${name} is down: ${describeError(error)}`);
    return { status: 'down', detail };
  }
}

/**
 * `telemetry` is this process's view of the telemetry trigger (`lib/telemetry/stall.ts`): a
 * stalled pipeline makes the report `degraded` (still 200: every service answers, and restarting
 * the app would not help) and names the failure's class.
 */
export async function checkHealth(
  probes: HealthProbes,
  log: (text: string) => void,
  timeoutMs = healthTimeoutMs,
  telemetry: () => PipelineState = () => ({ status: 'ok' }),
): Promise<Health> {
  const [iotHubRegistry, iotHubService, storage] = await Promise.all([
    probe('iotHubRegistry', () => probes.iotHubRegistry(), timeoutMs, log),
    probe('iotHubService', () => probes.iotHubService(), timeoutMs, log),
    probe('storage', () => probes.storage(), timeoutMs, log),
  ]);
  const healthy = [iotHubRegistry, iotHubService, storage].every((s) => s.status === 'up');
  const services = { iotHubRegistry, iotHubService, storage };
  const pipeline = telemetry();
  if (pipeline.status === 'degraded') {
    log(`telemetry is degraded: ${pipeline.detail ?? pipeline.reason ?? ''}`);
    return { status: healthy ? 'degraded' : 'unhealthy', services, telemetry: pipeline };
  }
  return { status: healthy ? 'healthy' : 'unhealthy', services };
}

/**
 * GET /health: 200 with the report when every service answers (`healthy` or `degraded`), else
 * 503 with the same report.
 */
export function createHealthHandler(
  services: () => { health: HealthProbes },
  telemetry: () => PipelineState = () => ({ status: 'ok' }),
): HttpHandler {
  return async (_request, context) => {
    try {
      const report = await checkHealth(
        services().health,
        (text) => context.warn(text),
        healthTimeoutMs,
        telemetry,
      );
      return jsonResponse(report.status === 'unhealthy' ? 503 : 200, report, {
        'Cache-Control': 'no-store',
      });
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}
