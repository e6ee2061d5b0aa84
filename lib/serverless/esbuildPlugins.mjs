import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The esbuild plugins of every function build: sst.config.ts names this file as `nodejs.plugins`
 * (SST runs it in Node beside its own esbuild; hence plain JavaScript), and test/support/bundle.ts
 * passes the same list. Each replaces, for one package's imports only, a dependency that a
 * deployed function never uses by what it does use; each says why the behaviour is the same.
 */
const require = createRequire(import.meta.url);
const OIDC_DIR = path.dirname(require.resolve('@vercel/oidc'));

/** What `@vercel/blob` imports, by specifier: the module it gets instead. */
const VERCEL_BLOB_IMPORTS = {
  // Its `fetch` (the whole undici client, 0.4 MB) becomes Node's own fetch, which is undici too:
  // the package maps it the same way everywhere but in Node (`browser` field, undici-browser.js).
  undici: 'export const fetch = globalThis.fetch.bind(globalThis);',
  // Its OIDC token comes from the request context or VERCEL_OIDC_TOKEN, as the package reads it,
  // but without the refresh through the files the Vercel CLI keeps on a developer's machine (jose,
  // the CLI's config and exec helpers: 0.2 MB). A function has no such files, so there the refresh
  // fails and the package goes on with BLOB_READ_WRITE_TOKEN, as it does when this throws.
  '@vercel/oidc': [
    "import { getVercelOidcTokenSync } from './get-vercel-oidc-token-sync.js';",
    'export async function getVercelOidcToken() { return getVercelOidcTokenSync(); }',
  ].join('\n'),
};

const FROM_VERCEL_BLOB = `${path.sep}node_modules${path.sep}@vercel${path.sep}blob${path.sep}`;

const vercelBlobImports = {
  name: 'retention-vercel-blob-imports',
  setup(build) {
    build.onResolve({ filter: /^(undici|@vercel\/oidc)$/ }, (args) =>
      args.importer.includes(FROM_VERCEL_BLOB) ? { path: args.path, namespace: 'retention-vercel-blob' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'retention-vercel-blob' }, (args) => ({
      contents: VERCEL_BLOB_IMPORTS[args.path],
      loader: 'js',
      resolveDir: OIDC_DIR,
    }));
  },
};

/**
 * `bowser`, which the AWS SDK imports (`import()`, a chunk of its own) to parse a browser's user
 * agent, only where `window` exists: in Node it is never called, and the user agent the SDK sends
 * is the same without it (os "other", browser "unknown"). A module that parses nothing instead.
 */
const FROM_AWS_SDK_CORE = `${path.sep}node_modules${path.sep}@aws-sdk${path.sep}core${path.sep}`;

const awsSdkBrowserImports = {
  name: 'retention-aws-sdk-browser-imports',
  setup(build) {
    build.onResolve({ filter: /^bowser$/ }, (args) =>
      args.importer.includes(FROM_AWS_SDK_CORE) ? { path: args.path, namespace: 'retention-aws-sdk' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'retention-aws-sdk' }, () => ({
      contents: 'export const parse = () => undefined;',
      loader: 'js',
    }));
  },
};

export default [vercelBlobImports, awsSdkBrowserImports];
