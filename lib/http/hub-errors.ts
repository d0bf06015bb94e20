/**
 * The one place that turns IoT Hub SDK failures into API problems.
 *
 * `azure-iothub` bundles its own copy of the `azure-iot-common` error classes
 * (`azure-iothub/dist/common-core/errors`), so `instanceof` against `azure-iot-common` would never
 * match: errors are recognised by `name`, which every SDK error class sets. Network failures
 * (refused, reset, DNS, TLS trust) have no SDK class and are recognised by their Node `code`.
 */
import { isErrorLike } from '../iothub/errors';
import { maxC2dMessageBytes } from '../iothub/limits';
import { ApiError } from './problem';

const defaultRetryAfterSeconds = '10';

const networkCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function nodeCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** `Retry-After` as IoT Hub sent it (registry calls carry the HTTP response), else a default. */
function retryAfter(error: Error): string {
  const response = (error as { response?: { headers?: Record<string, unknown> } }).response;
  const value = response?.headers?.['retry-after'];
  return typeof value === 'string' && /^\d{1,5}$/.test(value.trim())
    ? value.trim()
    : defaultRetryAfterSeconds;
}

/** Some transports wrap the root cause; look one level down for a network code. */
function causeOf(error: Error): Error | undefined {
  for (const key of ['transportError', 'amqpError', 'cause'] as const) {
    const inner = (error as unknown as Record<string, unknown>)[key];
    if (isErrorLike(inner)) return inner;
  }
  return undefined;
}

function isNetworkFailure(error: Error): boolean {
  const code = nodeCode(error);
  if (code && networkCodes.has(code)) return true;
  const inner = causeOf(error);
  return inner ? isNetworkFailure(inner) : false;
}

/**
 * The API problem for an IoT Hub SDK (or network) failure, or undefined when `error` is not one
 * (the caller then answers 500). `subject` names the device or message for the detail text.
 */
export function hubErrorToApiError(error: unknown, subject: string): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (!isErrorLike(error)) return undefined;
  switch (error.name) {
    case 'DeviceNotFoundError':
      return new ApiError('deviceNotFound', `${subject} is not registered in IoT Hub.`);
    case 'DeviceAlreadyExistsError':
      return new ApiError('deviceAlreadyExists', `${subject} is already registered.`);
    case 'DeviceMaximumQueueDepthExceededError':
      return new ApiError(
        'deviceQueueFull',
        `${subject} already has the maximum number of pending cloud-to-device messages (50); wait for the device to receive some, or for them to expire.`,
      );
    case 'InvalidEtagError':
    case 'PreconditionFailedError':
      return new ApiError(
        'preconditionFailed',
        `${subject} has a different etag now; read it again and retry.`,
      );
    case 'ThrottlingError':
      return new ApiError('throttled', 'IoT Hub asked the back end to slow down; retry later.', {
        headers: { 'Retry-After': retryAfter(error) },
      });
    case 'IotHubQuotaExceededError':
    case 'TooManyDevicesError':
      return new ApiError('hubQuotaExceeded', 'IoT Hub refused the operation for quota reasons.');
    case 'MessageTooLargeError':
      return new ApiError(
        'payloadTooLarge',
        `IoT Hub refused the message as too large: cloud-to-device messages are limited to ${maxC2dMessageBytes} bytes, counting the payload, the system property values and the property names and values.`,
      );
    case 'ArgumentError':
    case 'ArgumentOutOfRangeError':
    case 'FormatError':
      return new ApiError('hubRejectedRequest', `IoT Hub refused the request for ${subject}.`);
    case 'UnauthorizedError':
      return new ApiError(
        'hubAccessDenied',
        'Check the IoT Hub connection setting or the identity and its role assignments.',
      );
    case 'NotImplementedError':
      return new ApiError('notImplemented', 'This IoT Hub does not implement the operation.');
    case 'NotConnectedError':
    case 'ServiceUnavailableError':
    case 'InternalServerError':
    case 'IoTHubSuspendedError':
    case 'IotHubNotFoundError':
    case 'TimeoutError':
    case 'GatewayTimeoutError':
    case 'DeviceTimeoutError':
    case 'HubTimeoutError':
      return new ApiError('hubUnavailable', 'IoT Hub did not answer; retry later.', {
        headers: { 'Retry-After': defaultRetryAfterSeconds },
      });
    default:
      if (isNetworkFailure(error)) {
        return new ApiError('hubUnavailable', 'IoT Hub could not be reached; retry later.', {
          headers: { 'Retry-After': defaultRetryAfterSeconds },
        });
      }
      return undefined;
  }
}
