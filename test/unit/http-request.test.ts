import { HttpRequest } from '@azure/functions';
import { maxJsonDepth } from '../../lib/http/json-depth';
import { queryObject, readJsonBody } from '../../lib/http/request';

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

describe('readJsonBody', () => {
  const post = (body: string): HttpRequest =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/devices',
      body: { string: body },
      headers: { 'content-type': 'application/json' },
    });

  it('refuses any body nested deeper than maxJsonDepth with a 400 validation problem', async () => {
    const deep = `{"deviceId":"d","x":${'['.repeat(maxJsonDepth)}${']'.repeat(maxJsonDepth)}}`;
    await expect(readJsonBody(post(deep))).rejects.toMatchObject({
      kind: 'validationFailed',
      status: 400,
    });
  });

  it('takes a larger size limit when the route passes one', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(70_000) });
    await expect(readJsonBody(post(big))).rejects.toMatchObject({ kind: 'payloadTooLarge' });
    await expect(readJsonBody(post(big), 128 * 1024)).resolves.toEqual({ pad: 'x'.repeat(70_000) });
  });
});
