import { runInNewContext } from 'node:vm';
import * as common from 'azure-iot-common';
import { ApiError, problemBody, problemResponse } from '../../../../lib/http/problem';
import { describeError, redactSecrets } from '../../../../lib/http/redact';
import { HubTimeoutError, withHubTimeout } from '../../../../lib/iothub/errors';
import { hubErrorToApiError } from '../../../../lib/http/hub-errors';

// azure-iothub throws its own bundled copies of these classes; both must map the same way.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bundled = require('azure-iothub/dist/common-core/errors') as typeof common.errors;

type ErrorClass = new (message: string) => Error;

const cases: [string, number, string][] = [
  ['DeviceNotFoundError', 404, 'device-not-found'],
  ['DeviceAlreadyExistsError', 409, 'device-already-exists'],
  ['DeviceMaximumQueueDepthExceededError', 409, 'device-queue-full'],
  ['InvalidEtagError', 412, 'precondition-failed'],
  ['PreconditionFailedError', 412, 'precondition-failed'],
  ['ThrottlingError', 429, 'throttled'],
  ['IotHubQuotaExceededError', 403, 'hub-quota-exceeded'],
  ['TooManyDevicesError', 403, 'hub-quota-exceeded'],
  ['MessageTooLargeError', 413, 'payload-too-large'],
  ['ArgumentError', 400, 'hub-rejected-request'],
  ['UnauthorizedError', 502, 'hub-access-denied'],
  ['NotImplementedError', 501, 'not-implemented'],
  ['NotConnectedError', 503, 'hub-unavailable'],
  ['ServiceUnavailableError', 503, 'hub-unavailable'],
  ['InternalServerError', 503, 'hub-unavailable'],
  ['TimeoutError', 503, 'hub-unavailable'],
  ['GatewayTimeoutError', 503, 'hub-unavailable'],
];

describe('hubErrorToApiError', () => {
  it('names the 64 KB limit when IoT Hub refuses a message as too large', () => {
    const mapped = hubErrorToApiError(new common.errors.MessageTooLargeError('boom'), 'm');
    expect(mapped?.detail).toMatch(/limited to 65536 bytes/);
  });

  it.each(cases)('maps %s to %d', (name, status, slug) => {
    for (const source of [common.errors, bundled]) {
      const ErrorType = (source as unknown as Record<string, ErrorClass>)[name];
      expect(ErrorType).toBeDefined();
      const mapped = hubErrorToApiError(new ErrorType!('boom'), "Device 'd1'");
      expect(mapped?.status).toBe(status);
      expect(problemBody(mapped!).type).toBe(`https://iot-hub-functions.dev/problems/${slug}`);
    }
  });

  it('names the device in the detail', () => {
    const mapped = hubErrorToApiError(new common.errors.DeviceNotFoundError('x'), "Device 'd1'");
    expect(mapped?.detail).toContain("Device 'd1'");
  });

  it('gives the queue-full problem a title that says the queue is full', () => {
    const mapped = hubErrorToApiError(
      new common.errors.DeviceMaximumQueueDepthExceededError('x'),
      'd',
    );
    expect(problemBody(mapped!).title).toMatch(/queue is full/);
  });

  it("carries the hub's Retry-After on throttling, with a default otherwise", () => {
    const withHeader = Object.assign(new bundled.ThrottlingError('slow down'), {
      response: { headers: { 'retry-after': '42' } },
    });
    expect(hubErrorToApiError(withHeader, 'd')?.options.headers).toEqual({ 'Retry-After': '42' });
    const without = hubErrorToApiError(new bundled.ThrottlingError('slow down'), 'd');
    expect(without?.options.headers?.['Retry-After']).toMatch(/^\d+$/);
  });

  it.each(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'ECONNRESET', 'SELF_SIGNED_CERT_IN_CHAIN'])(
    'maps network failure %s to 503',
    (code) => {
      const error = Object.assign(new Error('connect failed'), { code });
      expect(hubErrorToApiError(error, 'd')?.status).toBe(503);
    },
  );

  it('recognises errors from another realm (Node core errors seen inside Jest)', () => {
    const foreign: unknown = runInNewContext(
      'Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })',
    );
    expect(foreign instanceof Error).toBe(false);
    expect(hubErrorToApiError(foreign, 'd')?.status).toBe(503);
    expect(describeError(foreign)).toBe('Error: connect ECONNREFUSED 127.0.0.1:1 (ECONNREFUSED)');
  });

  it('finds a network failure wrapped by the transport', () => {
    const inner = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    const outer = Object.assign(new Error('amqp failed'), { transportError: inner });
    expect(hubErrorToApiError(outer, 'd')?.status).toBe(503);
  });

  it('maps our own timeouts to 503', () => {
    expect(hubErrorToApiError(new HubTimeoutError('send', 10), 'd')?.status).toBe(503);
  });

  it('leaves unknown errors unmapped (the edge answers 500)', () => {
    expect(hubErrorToApiError(new TypeError('bug'), 'd')).toBeUndefined();
    expect(hubErrorToApiError('a string', 'd')).toBeUndefined();
  });

  it('passes ApiErrors through', () => {
    const error = new ApiError('deviceNotFound', 'x');
    expect(hubErrorToApiError(error, 'd')).toBe(error);
  });
});

describe('problemResponse', () => {
  it('is application/problem+json with type, title, status and detail', () => {
    const response = problemResponse(new ApiError('deviceNotFound', 'No such device.'));
    expect(response.status).toBe(404);
    expect(response.headers).toMatchObject({ 'Content-Type': 'application/problem+json' });
    expect(JSON.parse(response.body as string)).toEqual({
      type: 'https://iot-hub-functions.dev/problems/device-not-found',
      title: 'The device does not exist',
      status: 404,
      detail: 'No such device.',
    });
  });
});

describe('redaction', () => {
  const key = 'c2VjcmV0LWtleS12YWx1ZS0xMjM0NTY3ODkw';

  it('removes keys, signatures and SAS tokens', () => {
    const text = redactSecrets(
      `HostName=h;SharedAccessKeyName=service;SharedAccessKey=${key} and SharedAccessSignature sr=h&sig=abc%2Fdef&se=1 and https://x/?sv=1&sig=zzz AccountKey=${key};`,
    );
    expect(text).not.toContain(key);
    expect(text).not.toContain('abc%2Fdef');
    expect(text).not.toContain('zzz');
    expect(text).toContain('SharedAccessKeyName=service');
  });

  it('describes errors without their stack', () => {
    const error = new Error(`failed with SharedAccessKey=${key}`);
    const line = describeError(error);
    expect(line).toMatch(/^Error: failed with SharedAccessKey=\[redacted\]$/);
    expect(line).not.toContain('at ');
  });
});

describe('withHubTimeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('rejects with HubTimeoutError when the work does not settle in time', async () => {
    const pending = withHubTimeout('open', 1000, new Promise<never>(() => undefined));
    jest.advanceTimersByTime(1000);
    await expect(pending).rejects.toBeInstanceOf(HubTimeoutError);
  });

  it('resolves with the work result', async () => {
    await expect(withHubTimeout('open', 1000, Promise.resolve(7))).resolves.toBe(7);
  });
});
