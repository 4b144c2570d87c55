/**
 * The console's built files (console/dist/public, made by Vite), read once at start and served
 * at /console/ with a strict Content-Security-Policy: scripts, styles and connections from this
 * origin only, no inline code, no frames.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Api } from './api.js';
import { errorBody } from './errors.js';

/** Where `npm run build --workspace @mps/console` writes, seen from src/ and from dist/ alike. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist/public/', import.meta.url));

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface Asset {
  body: Buffer;
  type: string;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The built console by URL path below /console/ ('' is index.html); undefined when it was not built. */
export async function loadConsoleAssets(dir: string): Promise<Map<string, Asset> | undefined> {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  for (const file of await filesUnder(dir)) {
    const type = TYPES[extname(file)];
    if (type === undefined) continue; // source maps and the like stay on disk
    assets.set(relative(dir, file).split(sep).join('/'), { body: await readFile(file), type });
  }
  assets.set('', assets.get('index.html') as Asset);
  return assets;
}

export function serveConsole(app: Api, assets: Map<string, Asset> | undefined): void {
  app.get('/console', { schema: { hide: true } }, async (_, reply) => reply.redirect('/console/'));
  app.get<{ Params: { '*': string } }>('/console/*', { schema: { hide: true } }, async (request, reply) => {
    const path = request.params['*'];
    if (path.startsWith('api/')) return reply.code(404).send(errorBody('NOT_FOUND', `no route ${request.method} /console/${path}`));
    if (!assets) {
      return reply.code(503).send(errorBody('UNAVAILABLE', 'the console is not built: run npm run build --workspace @mps/console'));
    }
    const asset = assets.get(path);
    if (!asset) return reply.code(404).send(errorBody('NOT_FOUND', `no file /console/${path}`));
    reply
      .header('content-type', asset.type)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin')
      // Vite names built files by their content hash: they never change; index.html always may.
      .header('cache-control', path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (asset.type.startsWith('text/html')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    return reply.send(asset.body);
  });
}
