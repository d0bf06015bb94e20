/**
 * The one place where hub errors become HTTP: status code and IoT Hub's error body
 * `{"Message":"ErrorCode:<Code>;<text>","ExceptionMessage":"…"}`, which `azure-iothub`'s
 * `RestApiClient.translateError` turns into its typed errors (it reads the status, and the code
 * for 404s).
 */
import type { HubErrorCode } from '../core/contracts';
import { HubError } from '../core/contracts';

interface HttpError {
  status: number;
  /** The error code IoT Hub puts in the body. */
  code: string;
}

const httpErrors: Record<HubErrorCode, HttpError> = {
  ArgumentInvalid: { status: 400, code: 'ArgumentInvalid' },
  Unauthorized: { status: 401, code: 'IotHubUnauthorizedAccess' },
  DeviceNotFound: { status: 404, code: 'DeviceNotFound' },
  DeviceAlreadyExists: { status: 409, code: 'DeviceAlreadyExists' },
  PreconditionFailed: { status: 412, code: 'PreconditionFailed' },
  DeviceMaximumQueueDepthExceeded: { status: 403, code: 'DeviceMaximumQueueDepthExceeded' },
  MessageTooLarge: { status: 413, code: 'MessageTooLarge' },
  DeviceDisabled: { status: 400, code: 'DeviceDisabled' },
  ThrottlingException: { status: 429, code: 'ThrottlingException' },
  DeviceNotOnline: { status: 404, code: 'DeviceNotOnline' },
  GatewayTimeout: { status: 504, code: 'GatewayTimeout' },
  NotImplemented: { status: 501, code: 'NotImplemented' },
  ServerError: { status: 500, code: 'ServerError' },
};

export interface ErrorResponse {
  status: number;
  code: string;
  body: { Message: string; ExceptionMessage: string };
}

/** Anything that is not a HubError is an internal failure; its details stay in the log. */
export function toErrorResponse(error: unknown): ErrorResponse {
  const hubError =
    error instanceof HubError
      ? error
      : new HubError('ServerError', 'internal error in the local IoT Hub');
  const { status, code } = httpErrors[hubError.code];
  // The SDK splits the Message on ';' and keeps the second part as its error message.
  const text = hubError.message.replace(/;/g, ',');
  return {
    status,
    code,
    body: {
      Message: `ErrorCode:${code};${text}`,
      ExceptionMessage: `Tracking ID:local-iothub ErrorCode:${code} ${text}`,
    },
  };
}
