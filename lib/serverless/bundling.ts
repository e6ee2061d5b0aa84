/**
 * How every function is bundled: `sst.config.ts` passes this as `sst.aws.Function`'s `nodejs`,
 * and test/support/bundle.ts (the bundle test, `bench:cold-start`) bundles the same way.
 *
 * `splitting`: each `import()` becomes a chunk of its own, loaded on first use. Store and control
 * store code (the SDKs, drivers) is reached through the descriptors' `load()` and the Lambda
 * client through the backfill continuation only, so a cold start loads the handler, config
 * validation and Sentry, and a run then loads the backends its policy uses: a tokens function
 * never loads the S3 SDK, a PostgreSQL control store never loads the DynamoDB one. The chunks of
 * the backends a function never uses are still deployed (SST hands esbuild no per-function
 * options but `external` and `target`), but never read.
 */
export const FUNCTION_BUNDLING = { format: 'esm', minify: true, splitting: true } as const;
