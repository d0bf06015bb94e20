import { HttpRequest } from '@azure/functions';
import { maxJsonDepth } from '../../../../lib/http/json-depth';
import { ApiError } from '../../../../lib/http/problem';
import { maxBodyBytes, queryObject, readJsonBody } from '../../../../lib/http/request';

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

  /** A request whose body streams 16 MB in 16 KB chunks, with no Content-Length. */
  function streamingRequest(): {
    request: HttpRequest;
    pulled: () => number;
    cancelled: () => boolean;
  } {
    let pulls = 0;
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20));
        if (pulls === 1024) controller.close();
      },
      cancel() {
        cancelled = true;
      },
    });
    // The body members of a request over a stream (an HttpRequest cannot be built from one).
    const request = {
      headers: new Headers(),
      body,
      arrayBuffer: () => new Response(body).arrayBuffer(),
    } as unknown as HttpRequest;
    return { request, pulled: () => pulls, cancelled: () => cancelled };
  }

  it('stops reading a streamed body at the limit and answers 413, without buffering the rest', async () => {
    const { request, pulled, cancelled } = streamingRequest();
    const error = await readJsonBody(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(413);
    expect(cancelled()).toBe(true);
    // 64 KB in 16 KB chunks: the fifth chunk crosses the limit (one more may be queued).
    expect(pulled()).toBeLessThanOrEqual(maxBodyBytes / (16 * 1024) + 2);
  });

  it('refuses a declared Content-Length over the limit without reading the body', async () => {
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/devices',
      headers: { 'content-length': String(maxBodyBytes + 1) },
      body: { string: '{}' },
    });
    await expect(readJsonBody(request)).rejects.toMatchObject({ kind: 'payloadTooLarge' });
    expect(request.bodyUsed).toBe(false);
  });

  it('parses a body of exactly the limit', async () => {
    const text = JSON.stringify({ pad: 'x'.repeat(maxBodyBytes - 10) });
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/devices',
      headers: { 'content-type': 'application/json' },
      body: { string: text },
    });
    expect(text.length).toBe(maxBodyBytes);
    expect(await readJsonBody(request)).toEqual({ pad: 'x'.repeat(maxBodyBytes - 10) });
  });
});
