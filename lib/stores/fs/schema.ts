import * as z from 'zod';
import { problemCheck } from '../../core/issues.ts';
import { mainPatterns, sidecarPatternProblem } from '../../policy/sidecars.ts';
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

const SidecarPattern = z.string().min(1).superRefine(problemCheck(sidecarPatternProblem));

/**
 * `{ pattern: "*.json", mainFile: "*.jpg" }` (policy/sidecars.ts): a file matching `pattern` whose
 * main file is gone is swept by `retention reconcile` once older than its grace period.
 */
const Sidecar = z
  .strictObject({ pattern: SidecarPattern, mainFile: z.union([SidecarPattern, z.array(SidecarPattern).min(1)]) })
  .superRefine((rule, ctx) => {
    const mains = mainPatterns(rule);
    if (mains.includes(rule.pattern))
      ctx.addIssue({
        code: 'custom',
        message: `"${rule.pattern}" is both the sidecar and its main file`,
        path: ['mainFile'],
        params: { fix: 'name the main file\'s own pattern, e.g. "*.jpg"' },
      });
  });

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
  /** Files that belong to another file (`*.json` beside `*.jpg`): orphaned once it is gone. */
  sidecars: z.array(Sidecar).min(1).optional(),
});

export type FsStoreConfig = z.output<typeof FsStoreSchema>;
