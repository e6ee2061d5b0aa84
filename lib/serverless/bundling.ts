import { type ControlKind, DEFAULT_CONTROL } from '../control/descriptors.ts';
import type { FunctionRole } from './naming.ts';

/**
 * How every function is bundled: `sst.config.ts` passes this as `sst.aws.Function`'s `nodejs`,
 * and test/support/bundle.ts (the bundle test, `bench:cold-start`) bundles the same way.
 *
 * `splitting`: each `import()` becomes a chunk of its own, loaded on first use, so a cold start
 * reads the handler, config validation and Sentry, and a run then loads the backends its policy
 * uses. A bundler keeps every `import()` it can reach, read or not, so what a function deploys is
 * decided by its entry (functions/): the loaders of its own class's stores (stores/blobLoaders.ts,
 * …) and of the control store kind its config names (sst.config.ts picks the entry per kind).
 *
 * `plugins` (a path from the repository root, which SST runs in Node): replacements for what a
 * deployed function imports but never uses (esbuildPlugins.mjs says what and why).
 */
export const FUNCTION_BUNDLING = {
  format: 'esm',
  minify: true,
  splitting: true,
  plugins: 'lib/serverless/esbuildPlugins.mjs',
} as const;

/**
 * The entry of a function (`functions/blobs.handler`, relative to the repository root): one per
 * control store kind, each carrying that kind's code only; the default kind's at the top level.
 */
export function functionHandler(role: FunctionRole, control: ControlKind): string {
  return control === DEFAULT_CONTROL.kind ? `functions/${role}.handler` : `functions/${control}/${role}.handler`;
}
