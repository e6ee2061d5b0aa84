import * as z from 'zod';
import { parseDuration } from '../core/durations.ts';
import { issue } from '../core/issues.ts';
import { Duration, type RetentionSpec } from '../core/retention.ts';

/**
 * A blobs policy's compress tier: `compress: { after: "7d", format: "gzip" }` compresses files
 * older than `after` in place (`<name>.gz`, mtime kept); `retention` stays the delete tier.
 */
export const Compress = z.strictObject({
  /** Files older than this are compressed (and deleted at `retention`, as before). */
  after: Duration,
  format: z
    .enum(['gzip', 'zstd'])
    .default('gzip')
    .superRefine((format, ctx) => {
      if (format === 'zstd')
        issue(
          ctx,
          `"zstd" needs Node ≥ 22.15 (zlib.createZstdCompress); this is Node ${process.versions.node}`,
          'use "gzip"',
        );
    })
    .transform((format) => format as 'gzip'),
});

export type CompressConfig = z.output<typeof Compress>;

interface CompressingPolicy {
  retention: RetentionSpec;
  compress: CompressConfig;
  store: { kind: string; sidecars?: unknown };
}

/**
 * What `compress` needs of its policy: an fs store (the only one that compresses), no sidecars (a
 * main file renamed to `.gz` would orphan them), and `after` shorter than every retention (a file
 * is compressed before it is deleted, never instead).
 */
export function checkCompress(ctx: z.RefinementCtx, policy: CompressingPolicy, at: PropertyKey[]): void {
  if (policy.store.kind !== 'fs') {
    issue(ctx, `the ${policy.store.kind} store cannot compress`, 'remove compress (only fs stores compress)', [
      ...at,
      'compress',
    ]);
    return;
  }
  if (policy.store.sidecars !== undefined)
    issue(
      ctx,
      'compressing renames a main file to <name>.gz: its sidecars would look orphaned',
      'remove compress or store.sidecars',
      [...at, 'compress'],
    );
  const after = parseDuration(policy.compress.after);
  if (!after.ok) return;
  for (const retention of retentions(policy.retention)) {
    const kept = parseDuration(retention);
    if (kept.ok && after.ms >= kept.ms)
      issue(
        ctx,
        `${policy.compress.after} is not shorter than the retention ${retention}: files would be deleted uncompressed`,
        `compress sooner than every retention, e.g. after: "${formatShorter(kept.ms)}"`,
        [...at, 'compress', 'after'],
      );
  }
}

function retentions(retention: RetentionSpec): string[] {
  if (typeof retention === 'string') return [retention];
  return [...Object.values(retention.rules), ...(retention.default !== undefined ? [retention.default] : [])];
}

/** A quarter of the shortest retention, in whole days or hours: a suggestion, not a rule. */
function formatShorter(ms: number): string {
  const days = Math.floor(ms / 4 / 86_400_000);
  return days >= 1 ? `${days}d` : `${Math.max(1, Math.floor(ms / 4 / 3_600_000))}h`;
}
