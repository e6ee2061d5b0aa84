import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { ApiEnv } from './routes.ts';

/**
 * The web dashboard: a few static files of our own (no build step) and uPlot's browser build,
 * served from node_modules, so the page works from a fresh clone after `npm ci`, offline. The
 * files carry no data: the page asks for a token and reads everything through the API. A bundled
 * function has neither this folder nor node_modules: the deployment copies the files into one
 * directory (`dashboardCopies`) and the function names it (`addDashboard`'s `dir`).
 */
const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

interface Asset {
  /** The page path; its file in a copied directory is the same path ('/' is index.html). */
  route: string;
  file: string;
  type: string;
  /** uPlot's, from its package's dist/; ours otherwise, from lib/server/dashboard/. */
  vendor?: true;
}

const ASSETS: Asset[] = [
  { route: '/', file: 'index.html', type: HTML },
  { route: '/dashboard.js', file: 'dashboard.js', type: JS },
  { route: '/ui.js', file: 'ui.js', type: JS },
  { route: '/charts.js', file: 'charts.js', type: JS },
  { route: '/dashboard.css', file: 'dashboard.css', type: CSS },
  { route: '/vendor/uPlot.iife.min.js', file: 'uPlot.iife.min.js', type: JS, vendor: true },
  { route: '/vendor/uPlot.min.css', file: 'uPlot.min.css', type: CSS, vendor: true },
];

/** The page's paths (not API routes: the OpenAPI document leaves them out). */
export const DASHBOARD_PATHS = ASSETS.map((asset) => asset.route);

/** Where a copied asset goes under its directory. */
const copiedName = (asset: Asset): string => (asset.route === '/' ? asset.file : asset.route.slice(1));

/** The files to copy beside a bundled function (paths from the repository root) into `to`, as `dir` reads them. */
export function dashboardCopies(to: string): Array<{ from: string; to: string }> {
  return ASSETS.map((asset) => ({
    from: asset.vendor ? `node_modules/uplot/dist/${asset.file}` : `lib/server/dashboard/${asset.file}`,
    to: path.posix.join(to, copiedName(asset)),
  }));
}

/** In a checkout: ours beside this module, uPlot's where Node resolves its package. Resolved on use only. */
function sourceFile(asset: Asset): string {
  if (!asset.vendor) return path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboard', asset.file);
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  return path.join(uplot, 'dist', asset.file);
}

/** Scripts and styles from this server only; charts draw on canvas; data only from this API. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * Read once at start: a missing file (an incomplete install or deployment) stops the server from
 * starting, not a page later. `dir`: the files as `dashboardCopies` lays them out.
 */
export async function addDashboard(app: Hono<ApiEnv>, dir?: string): Promise<void> {
  for (const asset of ASSETS) {
    const body = await readFile(dir === undefined ? sourceFile(asset) : path.join(dir, copiedName(asset)));
    app.get(asset.route, (c) =>
      c.body(body, 200, { 'content-type': asset.type, 'cache-control': 'no-cache', ...SECURITY_HEADERS }),
    );
  }
}
