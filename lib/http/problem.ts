/**
 * RFC 9457 problem details: every 4xx/5xx the API sends is one of these kinds, each with a stable
 * `type` URI that clients can switch on. The catalogue is the single source of statuses and
 * titles; `detail` is per occurrence and never carries secrets or stack traces.
 */
import type { HttpResponseInit } from '@azure/functions';

export const problemTypeBase = 'https://iot-hub-functions.dev/problems/';

export const problemKinds = {
  invalidJson: { slug: 'invalid-json', status: 400, title: 'The request body is not valid JSON' },
  validationFailed: {
    slug: 'validation-failed',
    status: 400,
    title: 'The request does not match the schema',
  },
  invalidDeviceId: {
    slug: 'invalid-device-id',
    status: 400,
    title: 'The device id does not follow IoT Hub rules',
  },
  invalidContinuationToken: {
    slug: 'invalid-continuation-token',
    status: 400,
    title: 'The continuation token is not one this API issued',
  },
  hubRejectedRequest: {
    slug: 'hub-rejected-request',
    status: 400,
    title: 'IoT Hub rejected the request as invalid',
  },
  deviceNotFound: { slug: 'device-not-found', status: 404, title: 'The device does not exist' },
  messageNotFound: {
    slug: 'message-not-found',
    status: 404,
    title: 'No cloud-to-device message with this id is known for the device',
  },
  deviceAlreadyExists: {
    slug: 'device-already-exists',
    status: 409,
    title: 'A device with this id already exists',
  },
  deviceQueueFull: {
    slug: 'device-queue-full',
    status: 409,
    title: "The device's cloud-to-device queue is full",
  },
  preconditionFailed: {
    slug: 'precondition-failed',
    status: 412,
    title: 'The device has changed since the given etag (If-Match)',
  },
  preconditionRequired: {
    slug: 'precondition-required',
    status: 428,
    title: 'This change needs If-Match with the etag last read',
  },
  deviceOffline: {
    slug: 'device-offline',
    status: 404,
    title: 'The device is not connected, so it cannot answer a direct method',
  },
  methodTimeout: {
    slug: 'method-timeout',
    status: 504,
    title: 'The device did not answer the direct method in time',
  },
  payloadTooLarge: {
    slug: 'payload-too-large',
    status: 413,
    title: 'The request body or message is too large',
  },
  unsupportedMediaType: {
    slug: 'unsupported-media-type',
    status: 415,
    title: 'The request body must be application/json',
  },
  hubQuotaExceeded: {
    slug: 'hub-quota-exceeded',
    status: 403,
    title: "The IoT Hub's quota (devices or daily messages) is exhausted",
  },
  throttled: { slug: 'throttled', status: 429, title: 'IoT Hub is throttling requests' },
  internal: { slug: 'internal', status: 500, title: 'An unexpected error occurred' },
  notImplemented: {
    slug: 'not-implemented',
    status: 501,
    title: 'The IoT Hub does not support this operation',
  },
  hubAccessDenied: {
    slug: 'hub-access-denied',
    status: 502,
    title: "IoT Hub refused the back end's credentials",
  },
  hubUnavailable: {
    slug: 'hub-unavailable',
    status: 503,
    title: 'IoT Hub is unreachable or unavailable',
  },
  storageUnavailable: {
    slug: 'storage-unavailable',
    status: 503,
    title: 'Storage is unreachable or unavailable',
  },
} as const satisfies Record<string, { slug: string; status: number; title: string }>;

export type ProblemKind = keyof typeof problemKinds;

export interface ProblemIssue {
  path: string;
  message: string;
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** Validation failures list each offending field. */
  errors?: ProblemIssue[];
}

/** An error the API answers with a problem response; thrown by lib code, caught at the edge. */
export class ApiError extends Error {
  constructor(
    readonly kind: ProblemKind,
    readonly detail: string,
    readonly options: { headers?: Record<string, string>; errors?: ProblemIssue[] } = {},
  ) {
    super(`${problemKinds[kind].title}: ${detail}`);
    this.name = 'ApiError';
  }

  get status(): number {
    return problemKinds[this.kind].status;
  }

  title(): string {
    return problemKinds[this.kind].title;
  }
}

export function problemTypeUri(kind: ProblemKind): string {
  return problemTypeBase + problemKinds[kind].slug;
}

export function problemBody(error: ApiError): ProblemDetails {
  const spec = problemKinds[error.kind];
  return {
    type: problemTypeUri(error.kind),
    title: spec.title,
    status: spec.status,
    detail: error.detail,
    ...(error.options.errors ? { errors: error.options.errors } : {}),
  };
}

export function problemResponse(error: ApiError): HttpResponseInit {
  return {
    status: error.status,
    headers: { 'Content-Type': 'application/problem+json', ...error.options.headers },
    body: JSON.stringify(problemBody(error)),
  };
}
