import { RestError } from '@azure/data-tables';
import {
  classifyStorageFailure,
  isPermanentStorageFailure,
  storageErrorCode,
} from '../../../../lib/storage/failure-class';

function rest(statusCode: number | undefined, code?: string, message = 'failed'): RestError {
  return new RestError(message, { statusCode, code });
}

describe('classifyStorageFailure', () => {
  it.each([
    'PropertyValueTooLarge',
    'EntityTooLarge',
    'InvalidInput',
    'OutOfRangeInput',
    'TooManyProperties',
    'PropertyNameTooLong',
    'PropertyNameInvalid',
    'InvalidValueType',
    'KeyValueTooLarge',
  ])('calls a 400 %s a property of the data (permanent)', (code) => {
    expect(classifyStorageFailure(rest(400, code))).toEqual({ kind: 'permanent', code });
  });

  it('reads the code where a single-entity call puts it (details, or the OData body)', () => {
    const inDetails = rest(400);
    inDetails.details = { errorCode: 'PropertyValueTooLarge' };
    expect(classifyStorageFailure(inDetails)).toEqual({
      kind: 'permanent',
      code: 'PropertyValueTooLarge',
    });
    const inBody = rest(400, undefined, '{"odata.error":{"code":"EntityTooLarge","message":{}}}');
    expect(storageErrorCode(inBody)).toBe('EntityTooLarge');
    expect(classifyStorageFailure(inBody)).toEqual({ kind: 'permanent', code: 'EntityTooLarge' });
  });

  it('calls a 413 and a 400 without a code permanent too', () => {
    expect(classifyStorageFailure(rest(413))).toEqual({
      kind: 'permanent',
      code: 'RequestBodyTooLarge',
    });
    expect(classifyStorageFailure(rest(400))).toEqual({ kind: 'permanent', code: 'BadRequest' });
  });

  it('keeps 400s about the request itself (credentials, headers) transient', () => {
    expect(classifyStorageFailure(rest(400, 'InvalidAuthenticationInfo'))).toEqual({
      kind: 'transient',
      reason: 'auth',
    });
    expect(isPermanentStorageFailure(rest(400, 'InvalidHeaderValue'))).toBe(false);
  });

  it.each([
    [429, undefined, 'throttled'],
    [503, 'ServerBusy', 'throttled'],
    [500, 'InternalError', 'server-error'],
    [502, undefined, 'server-error'],
    [408, undefined, 'timeout'],
    [504, undefined, 'timeout'],
    [403, 'AuthenticationFailed', 'auth'],
    [401, undefined, 'auth'],
    [404, 'TableNotFound', 'unexpected'],
    [undefined, 'ECONNREFUSED', 'unreachable'],
    [undefined, 'REQUEST_SEND_ERROR', 'unreachable'],
    [undefined, 'ETIMEDOUT', 'timeout'],
  ] as const)('calls status %s (%s) transient: %s', (status, code, reason) => {
    expect(classifyStorageFailure(rest(status, code))).toEqual({ kind: 'transient', reason });
  });

  it('calls errors that are not from the storage client transient', () => {
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(classifyStorageFailure(abort)).toEqual({ kind: 'transient', reason: 'timeout' });
    const refused = Object.assign(new Error('connect'), { code: 'ECONNREFUSED' });
    expect(classifyStorageFailure(refused)).toEqual({ kind: 'transient', reason: 'unreachable' });
    expect(classifyStorageFailure(new Error('bug'))).toEqual({
      kind: 'transient',
      reason: 'unexpected',
    });
    expect(classifyStorageFailure('text')).toEqual({ kind: 'transient', reason: 'unexpected' });
  });
});
