/**
 * The explorer route (lib/explorer/assets.ts): serves only the built files, with a strict CSP,
 * ETags and a redirect to the trailing slash that relative asset URLs need.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, type HttpResponseInit } from '@azure/functions';
import { createExplorerHandler } from '../../../../lib/explorer/assets';
import { header } from '../../../support/http';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'explorer-assets-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(dir, 'app.js'), 'console.log(1)');
  writeFileSync(join(dir, 'notes.bin'), 'not served');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function get(pathname: string, path: string, headers: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    url: `http://localhost:7071${pathname}`,
    params: { path },
    headers,
  });
}

const bodyText = (response: HttpResponseInit) =>
  Buffer.from(response.body as Buffer).toString('utf8');

describe('the explorer route', () => {
  it('serves the page at /api/explorer/ with a strict CSP', async () => {
    const response = await createExplorerHandler(dir)(get('/api/explorer/', ''));
    expect(response.status).toBe(200);
    expect(header(response, 'Content-Type')).toBe('text/html; charset=utf-8');
    expect(bodyText(response)).toContain('<title>x</title>');
    expect(header(response, 'Content-Security-Policy')).toMatch(
      /default-src 'none'.*script-src 'self'.*connect-src 'self'.*frame-ancestors 'none'/,
    );
    expect(header(response, 'X-Content-Type-Options')).toBe('nosniff');
  });

  it('redirects /api/explorer to /api/explorer/', async () => {
    const response = await createExplorerHandler(dir)(get('/api/explorer', ''));
    expect({ status: response.status, location: header(response, 'Location') }).toEqual({
      status: 308,
      location: '/api/explorer/',
    });
  });

  it('serves built assets with their type and answers 304 to a matching ETag', async () => {
    const handler = createExplorerHandler(dir);
    const first = await handler(get('/api/explorer/app.js', 'app.js'));
    expect(header(first, 'Content-Type')).toBe('text/javascript; charset=utf-8');
    const etag = header(first, 'ETag')!;
    const again = await handler(get('/api/explorer/app.js', 'app.js', { 'if-none-match': etag }));
    expect(again.status).toBe(304);
  });

  it('serves nothing else: unknown files, other types, paths out of the folder', async () => {
    const handler = createExplorerHandler(dir);
    for (const path of [
      'missing.js',
      'notes.bin',
      '../package.json',
      '..%2Fpackage.json',
      'sub/app.js',
    ]) {
      const response = await handler(get(`/api/explorer/${path}`, path));
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });

  it('says the assets are not built when the folder is missing', async () => {
    const response = await createExplorerHandler(join(dir, 'nope'))(get('/api/explorer/', ''));
    expect(response.status).toBe(404);
    expect(response.body).toMatch(/npm run build/);
  });
});

// Jest runs the sources; the built files are in dist/ (where the compiled handler looks).
const builtDir = join(__dirname, '..', '..', '..', '..', 'dist', 'explorer');

describe('the built assets (npm run build)', () => {
  it('are the page, one script and one stylesheet, with the chart library bundled', () => {
    const html = readFileSync(join(builtDir, 'index.html'), 'utf8');
    expect(html).toMatch(/<script type="module" src="app.js">/);
    expect(html).not.toMatch(/https?:\/\//);
    const script = readFileSync(join(builtDir, 'app.js'), 'utf8');
    // uPlot is in the bundle (no CDN), and the page sends the key only as the API header.
    expect(script).toMatch(/uplot/i);
    expect(script).toContain('x-functions-key');
    expect(script).not.toMatch(/\bcode=/);
    expect(readFileSync(join(builtDir, 'app.css'), 'utf8')).toMatch(/\.uplot/);
  });
});
