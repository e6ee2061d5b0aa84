import { stat } from 'node:fs/promises';
import { build } from 'esbuild';

/** Bundled ESM still meets CommonJS dependencies that call require() on Node built-ins. */
const REQUIRE_SHIM =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/**
 * Bundles one Lambda entry point as it is deployed (minified ESM for node22, one file) and
 * returns its size in bytes. `externalAwsSdk`: leave `@aws-sdk/*` to the Lambda runtime.
 */
export async function bundleFunction(
  entry: string,
  outfile: string,
  options: { externalAwsSdk?: boolean } = {},
): Promise<number> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    banner: { js: REQUIRE_SHIM },
    external: options.externalAwsSdk ? ['@aws-sdk/*'] : [],
    logLevel: 'error',
  });
  return (await stat(outfile)).size;
}
