import * as z from 'zod';
import { globProblem, type RootProblem, rootProblem } from './roots.ts';

/**
 * The `fs` store's configuration. Only zod here: validating a config never loads a store's code
 * (each backend's schema.ts is imported by the registry; its store.ts only when a policy runs).
 */
/** A string refined by one of the lexical checks of roots.ts (the fix goes where issues.ts finds it). */
function checked(check: (value: string) => RootProblem | undefined) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const problem = check(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem.message, params: { fix: problem.fix } });
    });
}

/** Globs over keys relative to an fs root: never absolute, never climbing out with `..`. */
const FsGlobs = z.array(checked(globProblem));

export const FsStoreSchema = z.strictObject({
  kind: z.literal('fs'),
  /**
   * Directory whose files the policy governs (absolute, canonical, not a system directory: see
   * roots.ts); keys are POSIX paths relative to it.
   */
  root: checked(rootProblem),
  /** Globs (relative to root) a file must match; default: every file. */
  include: FsGlobs.optional(),
  /** Globs that exclude files even if included. */
  exclude: FsGlobs.optional(),
  /** Remove directories that a run left empty (never the root itself). */
  removeEmptyDirs: z.boolean().default(false),
});

export type FsStoreConfig = z.output<typeof FsStoreSchema>;
