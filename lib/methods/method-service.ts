/**
 * Direct methods behind the REST API: call a method on a device and return its answer. IoT Hub's
 * failures are told apart here because the SDK flattens them: a device that is not connected
 * (404 `DeviceNotOnline`, 404103) and an unregistered one (404 `DeviceNotFound`, 404001) both
 * arrive as 404s, and a device that does not answer in time is a 504 (`GatewayTimeout`).
 */
import { ApiError } from '../http/problem';
import { hubErrorToApiError } from '../http/hub-errors';
import { isErrorLike, withHubTimeout } from '../iothub/errors';
import { methodLimits, type InvokeMethodRequest, type MethodResult } from './schemas';
import type { MethodClient } from './method-client';

/** Time on top of the hub's own timeouts for the hub's answer to come back. */
const answerMarginMs = 10_000;

function subject(deviceId: string): string {
  return `Device '${deviceId}'`;
}

function responseOf(error: Error): { status?: number; body: string } {
  const carrier = error as { response?: { statusCode?: unknown }; responseBody?: unknown };
  const status = carrier.response?.statusCode;
  const body = carrier.responseBody;
  return {
    ...(typeof status === 'number' ? { status } : {}),
    body: typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '',
  };
}

/** The API problem for a failed method call: offline, timeout, or what every route maps. */
export function methodErrorToApiError(
  error: unknown,
  deviceId: string,
  methodName: string,
): ApiError | undefined {
  if (!isErrorLike(error)) return undefined;
  const { status, body } = responseOf(error);
  if (error.name === 'GatewayTimeoutError' || error.name === 'HubTimeoutError' || status === 504) {
    return new ApiError(
      'methodTimeout',
      `${subject(deviceId)} did not answer '${methodName}' within the response timeout.`,
    );
  }
  if (status === 404 && /DeviceNotOnline|404103/.test(body)) {
    return new ApiError(
      'deviceOffline',
      `${subject(deviceId)} is not connected (or did not subscribe to direct methods) within the connect timeout.`,
    );
  }
  if (status === 404 && /DeviceNotFound|404001/.test(body)) {
    return new ApiError('deviceNotFound', `${subject(deviceId)} is not registered in IoT Hub.`);
  }
  return hubErrorToApiError(error, subject(deviceId));
}

export class MethodService {
  constructor(private readonly client: MethodClient) {}

  async invoke(
    deviceId: string,
    methodName: string,
    request: InvokeMethodRequest,
  ): Promise<MethodResult> {
    const payload = request.payload ?? null;
    const size = Buffer.byteLength(JSON.stringify(payload), 'utf8');
    if (size > methodLimits.payloadBytes) {
      throw new ApiError(
        'payloadTooLarge',
        `The method payload is ${size} bytes; IoT Hub limits direct-method payloads to ${methodLimits.payloadBytes} bytes.`,
      );
    }
    const call = {
      methodName,
      payload,
      responseTimeoutInSeconds:
        request.responseTimeoutInSeconds ?? methodLimits.defaultResponseTimeoutSeconds,
      connectTimeoutInSeconds:
        request.connectTimeoutInSeconds ?? methodLimits.defaultConnectTimeoutSeconds,
    };
    // The hub answers within its two timeouts; this bound only guards against a hub that never does.
    const boundMs =
      (call.responseTimeoutInSeconds + call.connectTimeoutInSeconds) * 1000 + answerMarginMs;
    try {
      return await withHubTimeout(
        `Direct method '${methodName}'`,
        boundMs,
        this.client.invoke(deviceId, call),
      );
    } catch (error) {
      throw methodErrorToApiError(error, deviceId, methodName) ?? error;
    }
  }
}
