import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { ApiEnv } from './routes.ts';

/**
 * The web dashboard: a few static files of our own (no build step) and uPlot's browser build,
 * served from node_modules, so the page works from a fresh clone after `npm ci`, offline. The
 * files carry no data: the page asks for a token and reads everything through the API.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const uplot = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(here, 'dashboard', 'index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: path.join(here, 'dashboard', 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  '/ui.js': { file: path.join(here, 'dashboard', 'ui.js'), type: 'text/javascript; charset=utf-8' },
  '/charts.js': { file: path.join(here, 'dashboard', 'charts.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: path.join(here, 'dashboard', 'dashboard.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { file: path.join(uplot, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: path.join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** The page's paths (not API routes: the OpenAPI document leaves them out). */
export const DASHBOARD_PATHS = Object.keys(ASSETS);

/** Scripts and styles from this server only; charts draw on canvas; data only from this API. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Read once at start: a missing file (an incomplete install) stops the server from starting, not a page later. */
export async function addDashboard(app: Hono<ApiEnv>): Promise<void> {
  for (const [route, asset] of Object.entries(ASSETS)) {
    const body = await readFile(asset.file);
    app.get(route, (c) =>
      c.body(body, 200, { 'content-type': asset.type, 'cache-control': 'no-cache', ...SECURITY_HEADERS }),
    );
  }
}
