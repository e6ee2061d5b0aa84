import * as z from 'zod';
import { problemCheck } from '../../core/issues.ts';
import { Globs } from '../common.ts';

/** The `vercel-blob` store's configuration. Only zod here: validating a config never loads @vercel/blob. */
/**
 * `vercel_blob_rw_<store id>_<secret>`: @vercel/blob reads the store id from it, and refuses a
 * token without one only when it signs a request. The token itself is never echoed.
 */
const VercelToken = z
  .string()
  .min(1)
  .superRefine(
    problemCheck((token: string) => {
      if (token === '' || /^vercel_blob_rw_[A-Za-z0-9]+_\S+$/.test(token)) return undefined;
      const fix =
        'copy BLOB_READ_WRITE_TOKEN from the store (vercel_blob_rw_…); better, leave token out and set that variable';
      return { message: 'is not a Vercel Blob read-write token', fix };
    }),
  );

export const VercelBlobStoreSchema = z.strictObject({
  kind: z.literal('vercel-blob'),
  /** Pathname prefix the policy governs; keys are pathnames as stored. */
  prefix: z.string().default(''),
  /** Globs over the pathname a blob must match (picomatch, dotfiles included); default: all. */
  include: Globs.optional(),
  /** Globs that exclude blobs even if included. */
  exclude: Globs.optional(),
  /** Read-write token; absent: BLOB_READ_WRITE_TOKEN, read at each call. Prefer the env var. */
  token: VercelToken.optional(),
  /** Access of the blobs, needed by copy() for backup and restore. */
  access: z.enum(['public', 'private']).default('public'),
});

export type VercelBlobStoreConfig = z.output<typeof VercelBlobStoreSchema>;
