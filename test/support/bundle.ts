import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { build, type Metafile, type Plugin } from 'esbuild';
import { FUNCTION_BUNDLING } from '../../lib/serverless/bundling.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * What SST adds to every Node function build (pkg/runtime/node/build.go): bundled ESM meets
 * CommonJS dependencies that call require() or read __dirname.
 */
const SST_BANNER = [
  "import { createRequire as topLevelCreateRequire } from 'module';",
  'const require = topLevelCreateRequire(import.meta.url);',
  "import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from 'url';",
  'const __filename = topLevelFileUrlToPath(import.meta.url);',
  "const __dirname = topLevelFileUrlToPath(new topLevelURL('.', import.meta.url));",
].join('\n');

export interface FunctionBundle {
  /** The entry file, `<outdir>/<name>.mjs`, whose `handler` Lambda calls. */
  entry: string;
  /** What a cold start reads: the entry and the chunks it imports statically. */
  startBytes: number;
  /** The packages of node_modules in those files (`@sentry/node`, `zod`, …). */
  startPackages: Set<string>;
  /** Everything deployed, the lazy chunks (loaded on first use) included. */
  totalBytes: number;
  /** The same, each file deflated as in the zip Lambda downloads (headers aside). */
  zippedBytes: number;
  /** Every source file in the deployed files, by repository path (`lib/stores/s3/store.ts`). */
  inputs: Set<string>;
  files: number;
  /** The chunk of each `import()` target, by repository path (`lib/stores/s3/store.ts`). */
  lazyChunks: Map<string, string>;
}

/**
 * Bundles one Lambda entry point into `outdir` as SST deploys it: FUNCTION_BUNDLING (its plugins
 * included) plus what SST always sets (platform node, keepNames, `module` before `main`, esnext, its banner).
 * `externalAwsSdk`: leave `@aws-sdk/*` to the Lambda runtime.
 */
export async function bundleFunction(
  entry: string,
  outdir: string,
  options: { externalAwsSdk?: boolean } = {},
): Promise<FunctionBundle> {
  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: FUNCTION_BUNDLING.splitting,
    minify: FUNCTION_BUNDLING.minify,
    format: FUNCTION_BUNDLING.format,
    platform: 'node',
    target: 'esnext',
    keepNames: true,
    mainFields: ['module', 'main'],
    banner: { js: SST_BANNER },
    plugins: await functionPlugins(),
    external: options.externalAwsSdk ? ['@aws-sdk/*'] : [],
    metafile: true,
    logLevel: 'error',
  });
  const outputs = metafile.outputs;
  // One entry point: esbuild names its output after it, in outdir itself (as SST's handler path expects).
  const entryOutput = path.relative(ROOT, path.resolve(ROOT, outdir, `${path.parse(entry).name}.mjs`));
  const started = staticClosure(outputs, entryOutput);
  const sizes = (files: Iterable<string>) => [...files].reduce((sum, file) => sum + outputs[file]!.bytes, 0);
  return {
    entry: path.resolve(ROOT, entryOutput),
    startBytes: sizes(started),
    startPackages: new Set(
      [...started].flatMap((file) =>
        Object.keys(outputs[file]!.inputs).flatMap((input) => input.match(PACKAGE)?.[1] ?? []),
      ),
    ),
    totalBytes: sizes(Object.keys(outputs)),
    zippedBytes: (
      await Promise.all(
        Object.keys(outputs).map(async (file) => deflateRawSync(await readFile(path.join(ROOT, file))).length),
      )
    ).reduce((sum, bytes) => sum + bytes, 0),
    inputs: new Set(Object.values(outputs).flatMap((output) => Object.keys(output.inputs))),
    files: Object.keys(outputs).length,
    lazyChunks: new Map(
      Object.entries(outputs)
        .filter(([file, output]) => output.entryPoint && file !== entryOutput)
        .map(([file, output]) => [output.entryPoint!, path.resolve(ROOT, file)]),
    ),
  };
}

/** The plugins FUNCTION_BUNDLING names, as SST loads them. */
async function functionPlugins(): Promise<Plugin[]> {
  const url = pathToFileURL(path.join(ROOT, FUNCTION_BUNDLING.plugins)).href;
  return ((await import(url)) as { default: Plugin[] }).default;
}

/** The package of a path in node_modules: its last `node_modules/` segment, scope included. */
const PACKAGE = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/;

/** The output files loaded with `from`: itself and, transitively, what it imports statically. */
function staticClosure(outputs: Metafile['outputs'], from: string): Set<string> {
  const loaded = new Set<string>();
  const pending = [from];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (loaded.has(file)) continue;
    loaded.add(file);
    for (const imported of outputs[file]!.imports) {
      if (imported.kind === 'import-statement' && !imported.external) pending.push(imported.path);
    }
  }
  return loaded;
}
