/**
 * The operator's console at /console: static files from src/console and the browser builds of its
 * libraries (preact, htm, uPlot) straight from node_modules, so the server needs no build step. The
 * files hold no data and are served without the token; every data call the page makes needs it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

/** Options of {@link consoleRoutes}. */
export interface ConsoleOptions {
  /** The folder of the console's own files (default: src/console of this package). */
  dir?: string;
}

/** One file as it is sent. */
interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Browser ES module builds of the libraries, by the name the import map gives them. */
const VENDOR: Record<string, { from: string; file: string }> = {
  'preact.mjs': { from: 'preact', file: 'preact.mjs' },
  'hooks.mjs': { from: 'preact/hooks', file: 'hooks.mjs' },
  'htm.mjs': { from: 'htm', file: 'htm.module.js' },
  'uPlot.esm.js': { from: 'uplot', file: 'uPlot.esm.js' },
  'uPlot.min.css': { from: 'uplot', file: 'uPlot.min.css' },
};

/**
 * The console's own files: next to this module in the source tree (src/api → src/console), and in the
 * published package, where this module runs from dist/api and the files ship in src/console.
 */
function defaultDir(): string {
  const candidates = ['../console/', '../../src/console/'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'index.html'))) ?? candidates[0]!;
}

function asset(body: Buffer, name: string): Asset {
  return {
    body,
    type: TYPES[path.extname(name)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  };
}

/** Reads every file of the console and its libraries once: they are small and never change while running. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        walk(rel);
      } else if (TYPES[path.extname(entry.name)] && !entry.name.endsWith('.d.ts')) {
        assets.set(rel, asset(fs.readFileSync(path.join(dir, rel)), rel));
      }
    }
  };
  walk('');
  const require = createRequire(import.meta.url);
  for (const [name, { from, file }] of Object.entries(VENDOR)) {
    const full = path.join(path.dirname(require.resolve(from)), file);
    assets.set(`vendor/${name}`, asset(fs.readFileSync(full), name));
  }
  return assets;
}

/**
 * The Content-Security-Policy of the console: nothing but its own files. The import map is the one
 * inline script a page with bare imports needs; it is allowed by its hash, taken from index.html.
 */
export function consolePolicy(indexHtml: string): string {
  const scripts = [...indexHtml.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${scripts.join(' ')}`.trim(),
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Serves the console at /console (the page) and /console/* (its files). */
export const consoleRoutes: FastifyPluginAsync<ConsoleOptions> = async (app, options) => {
  const assets = loadAssets(options.dir ?? defaultDir());
  const index = assets.get('index.html');
  if (!index) {
    throw new Error(`The console's index.html is missing from ${options.dir ?? defaultDir()}.`);
  }
  const policy = consolePolicy(index.body.toString('utf8'));

  app.get('/console', async (_request, reply) => reply.redirect('console/', 302));
  app.get<{ Params: { '*': string } }>('/console/*', async (request, reply) => {
    const name = request.params['*'] || 'index.html';
    const file = assets.get(name);
    if (!file) {
      return reply
        .status(404)
        .send({ error: { code: 'NOT_FOUND', message: `No console file ${JSON.stringify(name)}.` } });
    }
    void reply
      .header('content-security-policy', policy)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      // Revalidated on every load (cheap: 304 by ETag), so a node upgrade shows the new console at once.
      .header('cache-control', 'no-cache')
      .header('etag', file.etag);
    if (request.headers['if-none-match'] === file.etag) {
      return reply.status(304).send();
    }
    return reply.type(file.type).send(file.body);
  });
};
