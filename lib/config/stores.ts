import * as z from 'zod';
import { globProblem, rootProblem, type RootProblem } from './roots.ts';

export { DynamoTokensStoreSchema } from '../stores/dynamoTokensSchema.ts';

/**
 * Store configuration schemas, one per backend kind. They live apart from the stores so that
 * validating a config never loads a cloud SDK; the registry in stores/index.ts loads a store's
 * code only when a policy uses it.
 */
const Globs = z.array(z.string().min(1));

/** A string refined by one of the lexical checks of roots.ts (the fix goes where issues.ts finds it). */
function checked(check: (value: string) => RootProblem | undefined) {
  return z.string().min(1).superRefine((value, ctx) => {
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

export const S3StoreSchema = z
  .strictObject({
    kind: z.literal('s3'),
    bucket: z.string().min(1),
    /** Key prefix the policy governs; keys in reports and audit are full object keys as stored. */
    prefix: z.string().default(''),
    /**
     * Sharding for large buckets: disjoint key prefixes (each starting with `prefix`) listed
     * concurrently; replaces `prefix` for listing. Pages then come in key order per shard only.
     */
    prefixes: z.array(z.string().min(1)).min(1).optional(),
    /** Globs over the full key a key must match (picomatch, dotfiles included); default: all. */
    include: Globs.optional(),
    /** Globs that exclude keys even if included. */
    exclude: Globs.optional(),
    region: z.string().min(1),
    /** S3-compatible endpoint (MinIO, s3rver, …); absent: AWS. */
    endpoint: z.string().url().optional(),
    forcePathStyle: z.boolean().optional(),
    /** DeleteObjects requests (≤1000 keys each) in flight at once. */
    deleteConcurrency: z.number().int().min(1).max(32).default(4),
    /** `all`: noncurrent versions and delete markers of expired keys go too (versioned buckets). */
    versions: z.enum(['current', 'all']).default('current'),
    /** SDK attempts per request (adaptive retry mode: SlowDown/5xx are retried with backoff and jitter). */
    maxAttempts: z.number().int().min(1).max(20).default(5),
    /**
     * Send each object's listed ETag with DeleteObjects, so S3 itself refuses an object rewritten
     * since the pre-delete listing. AWS general-purpose buckets support it; some S3-compatible
     * servers reject the request, hence opt-in.
     */
    conditionalDelete: z.boolean().default(false),
  })
  .superRefine((store, ctx) => {
    const shards = store.prefixes ?? [];
    shards.forEach((shard, index) => {
      if (!shard.startsWith(store.prefix)) {
        ctx.addIssue({ code: 'custom', path: ['prefixes', index], message: `"${shard}" does not start with prefix "${store.prefix}"`, params: { fix: 'make every shard prefix start with prefix' } });
      }
      const overlapping = shards.findIndex((other, otherIndex) => otherIndex !== index && shard.startsWith(other));
      if (overlapping !== -1) {
        ctx.addIssue({ code: 'custom', path: ['prefixes', index], message: `"${shard}" overlaps prefixes[${overlapping}]`, params: { fix: 'shard prefixes must be disjoint: none may start with another' } });
      }
    });
  });


export const VercelBlobStoreSchema = z.strictObject({
  kind: z.literal('vercel-blob'),
  /** Pathname prefix the policy governs; keys are pathnames as stored. */
  prefix: z.string().default(''),
  /** Globs over the pathname a blob must match (picomatch, dotfiles included); default: all. */
  include: Globs.optional(),
  /** Globs that exclude blobs even if included. */
  exclude: Globs.optional(),
  /** Read-write token; absent: BLOB_READ_WRITE_TOKEN, read at each call. Prefer the env var. */
  token: z.string().min(1).optional(),
  /** Access of the blobs, needed by copy() for backup and restore. */
  access: z.enum(['public', 'private']).default('public'),
});

