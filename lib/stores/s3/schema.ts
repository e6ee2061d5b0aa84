import * as z from 'zod';
import { checkRegion, Endpoint } from '../../aws/schema.ts';
import { type Problem, problemCheck } from '../../core/issues.ts';
import { clip } from '../../errors.ts';
import { Globs } from '../common.ts';

/** The `s3` store's configuration. Only zod here: validating a config never loads the AWS SDK. */
/** Reserved by S3 for other kinds of names (internationalized domains, S3 internals, AWS docs). */
const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];

/**
 * The S3 bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
 * 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit,
 * no two dots in a row, not an IP address, no reserved prefix. `../etc` or `s3://b/p` would
 * otherwise fail only at the first request, once the command had started. Access point and
 * directory bucket aliases (`-s3alias`, `--x-s3`) follow these rules and pass.
 */
export function bucketNameProblem(name: string): Problem | undefined {
  const shown = JSON.stringify(clip(name));
  const problem = (what: string, fix = 'use the bucket name as S3 lists it'): Problem => ({
    message: `${shown} ${what}`,
    fix,
  });
  if (name.length < 3 || name.length > 63)
    return problem(`is ${name.length} characters long: S3 bucket names have 3 to 63`);
  const bad = /[^a-z0-9.-]/.exec(name)?.[0];
  if (bad !== undefined) {
    const what = `contains ${JSON.stringify(bad)}: S3 bucket names have only lowercase letters, digits, dots and hyphens`;
    return /[:/]/.test(bad)
      ? problem(what, 'give the bucket name alone, without s3:// or a path (a key prefix goes in "prefix")')
      : problem(what);
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return problem('must start and end with a letter or digit');
  if (name.includes('..')) return problem('has two dots in a row');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return problem('is an IP address, not a bucket name');
  const reserved = RESERVED_BUCKET_PREFIXES.find((prefix) => name.startsWith(prefix));
  return reserved ? problem(`starts with "${reserved}", which S3 reserves`) : undefined;
}

export const BucketName = z.string().superRefine(problemCheck(bucketNameProblem));

/**
 * Where an S3 policy's backups go (`s3://<bucket>/<prefix>`, the prefix ending with `/` unless
 * empty), or why they cannot: checked when the config is parsed and again by the store.
 * Backups inside the store's scope would be scanned, counted and later deleted as policy items.
 */
export function s3BackupLocation(
  to: string,
  store: { bucket: string; prefix: string; shards: string[] },
  policy: string,
): { bucket: string; prefix: string } | Problem {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(to);
  if (!match)
    return { message: `${JSON.stringify(clip(to))} is not an S3 location`, fix: 'use s3://<bucket>/<prefix>' };
  const problem = bucketNameProblem(match[1]!);
  if (problem) return problem;
  const rawPrefix = match[2] ?? '';
  const backup = {
    bucket: match[1]!,
    prefix: rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`,
  };
  const policyPrefix = `${backup.prefix}${policy}/`;
  const inScope = store.shards.some((shard) => policyPrefix.startsWith(shard) || shard.startsWith(policyPrefix));
  if (backup.bucket === store.bucket && inScope) {
    const message = `${clip(to)} overlaps the store s3://${store.bucket}/${store.prefix}`;
    return { message, fix: 'use another bucket or a prefix outside the store' };
  }
  return backup;
}

/** Object keys are at most 1024 bytes of UTF-8: a longer prefix matches nothing. */
const KeyPrefix = z.string().superRefine(
  problemCheck((prefix: string) => {
    const bytes = Buffer.byteLength(prefix, 'utf8');
    if (bytes <= 1024) return undefined;
    return { message: `is ${bytes} bytes long: S3 keys have at most 1024`, fix: 'use the prefix of keys that exist' };
  }),
);

/**
 * Where S3 Inventory delivers this bucket's reports: `<destination prefix>/<source bucket>/<config id>/`,
 * holding `<date>/manifest.json` and `data/*.csv.gz`.
 */
const InventorySchema = z.strictObject({
  bucket: BucketName,
  prefix: KeyPrefix.refine((prefix) => prefix === '' || prefix.endsWith('/'), {
    error: 'must end with "/" (the folder S3 Inventory writes <date>/manifest.json under)',
  }),
  /** Shards run at once (the Map's MaxConcurrency): each deletes at up to ~1,000 objects a second. */
  concurrency: z.number().int().min(1).max(1000).default(10),
});

/** The inventory's reports are not the policy's items: a policy whose scope holds them would delete them. */
function checkInventoryOutsideScope(
  store: {
    bucket: string;
    prefix: string;
    prefixes?: string[] | undefined;
    inventory?: { bucket: string; prefix: string } | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const { inventory } = store;
  if (!inventory || inventory.bucket !== store.bucket) return;
  const shards = store.prefixes ?? [store.prefix];
  if (shards.some((shard) => inventory.prefix.startsWith(shard) || shard.startsWith(inventory.prefix)))
    ctx.addIssue({
      code: 'custom',
      path: ['inventory', 'prefix'],
      message: `s3://${inventory.bucket}/${inventory.prefix} overlaps the store s3://${store.bucket}/${store.prefix}`,
      params: { fix: 'deliver the inventory to another bucket or to a prefix outside the store' },
    });
}

export const S3StoreSchema = z
  .strictObject({
    kind: z.literal('s3'),
    bucket: BucketName,
    /** Key prefix the policy governs; keys in reports and audit are full object keys as stored. */
    prefix: KeyPrefix.default(''),
    /**
     * Sharding for large buckets: disjoint key prefixes (each starting with `prefix`) listed
     * concurrently; replaces `prefix` for listing. Pages then come in key order per shard only.
     */
    prefixes: z.array(KeyPrefix.min(1)).min(1).optional(),
    /** Globs over the full key a key must match (picomatch, dotfiles included); default: all. */
    include: Globs.optional(),
    /** Globs that exclude keys even if included. */
    exclude: Globs.optional(),
    region: z.string().min(1),
    /** S3-compatible endpoint (MinIO, s3rver, …); absent: AWS. */
    endpoint: Endpoint.optional(),
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
    /**
     * An S3 Inventory of the bucket (CSV), for buckets too large to list: the Distributed Map of
     * the deployment reads its manifests and hands the blobs function shards of rows (inventory.ts).
     */
    inventory: InventorySchema.optional(),
  })
  .superRefine((store, ctx) => {
    checkRegion(store, ctx);
    checkInventoryOutsideScope(store, ctx);
    const shards = store.prefixes ?? [];
    shards.forEach((shard, index) => {
      if (!shard.startsWith(store.prefix)) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefixes', index],
          message: `"${shard}" does not start with prefix "${store.prefix}"`,
          params: { fix: 'make every shard prefix start with prefix' },
        });
      }
      const overlapping = shards.findIndex((other, otherIndex) => otherIndex !== index && shard.startsWith(other));
      if (overlapping !== -1) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefixes', index],
          message: `"${shard}" overlaps prefixes[${overlapping}]`,
          params: { fix: 'shard prefixes must be disjoint: none may start with another' },
        });
      }
    });
  });

export type S3StoreConfig = z.output<typeof S3StoreSchema>;
