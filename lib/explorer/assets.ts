/**
 * Serves the device explorer's built assets (dist/explorer) from an anonymous route. The page
 * holds no secret: every data call it makes goes to the keyed API with the key the user gives.
 * Only the files present at first use are served (no path is ever joined from the request), each
 * with a strict Content-Security-Policy.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';

/** From dist/lib/explorer to dist/explorer (devhost/explorer-build.ts writes them there). */
export const defaultAssetDir = join(__dirname, '..', '..', 'explorer');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Scripts and styles from this origin only; data calls to this origin only; no framing. uPlot
 * sets element styles from script (CSSOM), which CSP does not restrict.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return assets;
  }
  for (const name of names) {
    const contentType = contentTypes[extname(name)];
    if (!contentType) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    assets.set(name, { body, contentType, etag });
  }
  return assets;
}

function securityHeaders(): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    // Revalidate every time (cheap with the ETag): a deployment changes the files in place.
    'Cache-Control': 'no-cache',
  };
}

export function createExplorerHandler(
  dir: string = defaultAssetDir,
): (request: HttpRequest) => Promise<HttpResponseInit> {
  let assets: Map<string, Asset> | undefined;
  const serve = (request: HttpRequest): HttpResponseInit => {
    // Reloaded while empty: a first request before the build finished must not stick.
    if (!assets || assets.size === 0) assets = loadAssets(dir);
    const path = request.params.path ?? '';
    const pathname = new URL(request.url).pathname;
    // Relative asset URLs need the trailing slash: /api/explorer → /api/explorer/.
    if (path === '' && !pathname.endsWith('/')) {
      return { status: 308, headers: { Location: `${pathname}/`, ...securityHeaders() } };
    }
    const asset = assets.get(path === '' ? 'index.html' : path);
    if (!asset) {
      const text =
        assets.size === 0 ? 'The explorer assets are not built: run npm run build.' : 'Not found.';
      return {
        status: 404,
        headers: { ...securityHeaders(), 'Content-Type': 'text/plain; charset=utf-8' },
        body: text,
      };
    }
    const headers = { ...securityHeaders(), 'Content-Type': asset.contentType, ETag: asset.etag };
    if (request.headers.get('if-none-match') === asset.etag) return { status: 304, headers };
    if (request.method === 'HEAD') return { status: 200, headers };
    return { status: 200, headers, body: asset.body };
  };
  return (request) => Promise.resolve(serve(request));
}
