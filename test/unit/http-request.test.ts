import { HttpRequest } from '@azure/functions';
import { queryObject } from '../../lib/http/request';

describe('queryObject', () => {
  it('hides the host-level `code` key parameter from route schemas', () => {
    const request = new HttpRequest({
      method: 'GET',
      url: 'http://localhost/api/devices?pageSize=5&code=secret-function-key&continuationToken=abc',
    });
    expect(queryObject(request)).toEqual({ pageSize: '5', continuationToken: 'abc' });
  });

  it('keeps every other parameter, so strict schemas still reject unknown ones', () => {
    const request = new HttpRequest({ method: 'GET', url: 'http://localhost/api/devices?bogus=1' });
    expect(queryObject(request)).toEqual({ bogus: '1' });
  });
});
