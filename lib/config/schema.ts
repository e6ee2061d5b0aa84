import path from 'node:path';
import * as z from 'zod';
import { CONTROL_BACKENDS } from '../control/descriptors.ts';
import { DEFAULT_ATTENTION_AFTER } from '../core/attention.ts';
import { parseDuration } from '../core/durations.ts';
import { issue, problemCheck } from '../core/issues.ts';
import { DatabaseTimeout, Duration, Retention, type RetentionSpec } from '../core/retention.ts';
import type { DataClass } from '../core/types.ts';
import { checkSchedule } from '../policy/schedule.ts';
import { backendsServing, classSchemas, storeBackend } from '../stores/descriptors.ts';
import { rowsPolicyFields } from '../stores/postgres/schema.ts';
import { s3BackupLocation } from '../stores/s3/schema.ts';
import { Compress, checkCompress } from './compress.ts';
import { DiskConfig, Emergency } from './disk.ts';

/**
 * The configuration as zod schemas, parsed once at start. A policy's `store` and the `control`
 * entry are unions of the registered backends' schemas (stores/registry.ts, control/registry.ts),
 * discriminated by `kind`. Custom checks put the fix in `params.fix` so errors read
 * `error: policies[0].retention: "30" has no unit (add one: "30d" …)`.
 */
const Schedule = z.string().superRefine((value, ctx) => {
  const result = checkSchedule(value);
  if (!result.ok) issue(ctx, result.message, result.fix);
});

/** At most 50 characters: the policy is the slug of its Sentry cron monitor, which takes no more. */
const PolicyName = z
  .string()
  .max(50)
  .superRefine(
    problemCheck((name: string) => {
      if (/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) return undefined;
      return { message: 'must be kebab-case (lowercase letters, digits and single dashes)', fix: 'e.g. "temp-files"' };
    }),
  );

const Limits = z.strictObject({
  /** Planned deletions above this abort the run before anything is deleted. */
  maxDeletesPerRun: z.number().int().positive().default(10_000),
  /** Planned deletions / items in scope above this abort the run. */
  maxDeleteFraction: z.number().gt(0).max(1).default(0.5),
});

const Sla = z.strictObject({
  /** Run duration threshold; defaults to the policy budget. */
  maxDuration: Duration.optional(),
  /** Oldest eligible item still present after a run. */
  maxOverdue: Duration.default('1d'),
  /** failed / (deleted + failed). */
  maxFailureRate: z.number().min(0).max(1).default(0.01),
  /** Fraction of a threshold that raises a warning. */
  warnAt: z.number().gt(0).lt(1).default(0.8),
});

const Backup = z.strictObject({
  /** Where copies go before deletion (a directory for the fs store). */
  to: z.string().min(1),
  /** How long backups are kept; the tool prunes older ones. */
  keepFor: Duration,
});

/**
 * The schemas of the registered backends, discriminated by `kind`. A single backend's schema is
 * used alone: its own errors ("use one of: "postgres"") say as much as an unknown kind would.
 */
function byKind<S extends z.ZodObject>(schemas: S[], error: string): S | z.ZodDiscriminatedUnion<[S, ...S[]]> {
  const [first, ...rest] = schemas;
  if (first === undefined) throw new Error(`no backend registered: ${error}`);
  return rest.length === 0 ? first : z.discriminatedUnion('kind', [first, ...rest], { error });
}

/** A policy's `store`: the backends that serve its data class. */
function storeOf<C extends DataClass>(dataClass: C) {
  const known = backendsServing(dataClass).map((backend) => backend.kind);
  return byKind(classSchemas(dataClass), `unknown store kind (known for class "${dataClass}": ${known.join(', ')})`);
}

export const BlobStore = storeOf('blobs');

const PolicyCommon = {
  name: PolicyName,
  description: z.string().optional(),
  retention: Retention,
  schedule: Schedule,
  enabled: z.boolean().default(true),
  budget: Duration.default('10m'),
  /**
   * Items per batch. Absent (the default): rows swept in one statement per batch size each
   * statement by how long the last one took, and every other store takes 500 (engine/batchSize.ts).
   * Set: that many in every batch, for operators who tuned it.
   */
  batchSize: z.number().int().positive().max(10_000).optional(),
  limits: Limits.default({ maxDeletesPerRun: 10_000, maxDeleteFraction: 0.5 }),
  sla: Sla.default({ maxOverdue: '1d', maxFailureRate: 0.01, warnAt: 0.8 }),
  backup: Backup.optional(),
  emergency: Emergency.optional(),
  /** Consecutive live runs an item may fail to delete before `retention attention list` shows it. */
  attentionAfter: z.number().int().min(1).max(1000).default(DEFAULT_ATTENTION_AFTER),
  /** Retention under 1h is almost always a typo; this says it is not. */
  allowShortRetention: z.boolean().default(false),
};

export const TokensStore = storeOf('tokens');

export const BlobsPolicy = z.strictObject({
  ...PolicyCommon,
  class: z.literal('blobs'),
  store: BlobStore,
  /** Compress files older than `after` (fs: `<name>.gz`, mtime kept); `retention` still deletes them. */
  compress: Compress.optional(),
});

/** Tokens: `retention` is the grace period after the expiry attribute. */
export const TokensPolicy = z.strictObject({ ...PolicyCommon, class: z.literal('tokens'), store: TokensStore });

/**
 * Rows of a table, by a timestamp column. Its fields beyond `store` are the rows class's own:
 * PostgreSQL (Neon or any PostgreSQL), its only backend, defines them.
 */
export const RowsPolicy = z.strictObject({
  ...PolicyCommon,
  class: z.literal('rows'),
  store: storeOf('rows'),
  ...rowsPolicyFields({ timeout: DatabaseTimeout, blobStore: BlobStore }),
});

export const Policy = z.discriminatedUnion('class', [BlobsPolicy, TokensPolicy, RowsPolicy], {
  error: 'unknown data class (known: blobs, tokens, rows)',
});

export const ControlConfig = byKind(
  CONTROL_BACKENDS.map((backend) => backend.schema),
  `unknown control store kind (known: ${CONTROL_BACKENDS.map((backend) => backend.kind).join(', ')})`,
);

const ONE_HOUR_MS = 3_600_000;

export const Config = z
  .strictObject({
    /** Where leases, history and audit live; absent = embedded PostgreSQL under $RETENTION_HOME. */
    control: ControlConfig.optional(),
    disk: DiskConfig.default({ warning: 80, critical: 90, cooldown: '6h', interval: '5m' }),
    policies: z.array(Policy).min(1, { error: 'needs at least one policy' }),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.policies.forEach((policy, index) => {
      const first = seen.get(policy.name);
      if (first !== undefined) {
        issue(
          ctx,
          `duplicate policy name "${policy.name}" (also policies[${first}])`,
          'give each policy a unique name',
          ['policies', index, 'name'],
        );
      }
      seen.set(policy.name, index);
      if (policy.backup && policy.class === 'rows' && policy.archive) {
        issue(
          ctx,
          'both backup and archive keep copies of deleted rows',
          'keep one: archive moves rows in the deleting statement',
          ['policies', index, 'backup'],
        );
      }
      if (policy.backup && policy.class === 'tokens') {
        issue(
          ctx,
          'tokens are never backed up (a copy of a credential defeats deleting it)',
          'remove backup from this policy',
          ['policies', index, 'backup'],
        );
      }
      if (policy.class === 'rows' && policy.blob) checkLinkedFiles(ctx, policy, ['policies', index]);
      if (policy.class === 'blobs' && policy.compress) {
        checkCompress(ctx, { ...policy, compress: policy.compress }, ['policies', index]);
        checkCompressedRoot(ctx, config.policies, policy.store, ['policies', index, 'compress']);
      }
      if (policy.backup && policy.store.kind === 's3') {
        const { bucket, prefix, prefixes } = policy.store;
        const location = s3BackupLocation(
          policy.backup.to,
          { bucket, prefix, shards: prefixes ?? [prefix] },
          policy.name,
        );
        if ('message' in location) issue(ctx, location.message, location.fix, ['policies', index, 'backup', 'to']);
      }
      if (policy.backup && policy.store.kind === 'fs' && isInsideDirectory(policy.store.root, policy.backup.to)) {
        // Copies keep their old mtime: inside the root they would be swept as expired items.
        issue(
          ctx,
          `${policy.backup.to} is inside the store root ${policy.store.root}`,
          'choose a backup directory outside the root',
          ['policies', index, 'backup', 'to'],
        );
      }
      const emergencyRetention = policy.emergency?.retention;
      const retentions: Array<[PropertyKey[], RetentionSpec]> = [[['retention'], policy.retention]];
      if (emergencyRetention) retentions.push([['emergency', 'retention'], emergencyRetention]);
      for (const [field, retention] of retentions) {
        for (const [path, duration] of retentionDurations(retention)) {
          const parsed = parseDuration(duration);
          if (parsed.ok && parsed.ms < ONE_HOUR_MS && !policy.allowShortRetention) {
            issue(
              ctx,
              `retention ${duration} is under 1h`,
              'if that is intended, set "allowShortRetention": true on the policy',
              ['policies', index, ...field, ...path],
            );
          }
        }
      }
    });
  });

/**
 * A row and its linked file are deleted together, so they must be restorable together
 * (invariant 11): copies of the rows need copies of their files, and an archive (rows only,
 * while the files are deleted) cannot be restored whole.
 */
function checkLinkedFiles(
  ctx: z.RefinementCtx,
  policy: Extract<z.output<typeof Policy>, { class: 'rows' }>,
  at: PropertyKey[],
): void {
  const blob = policy.blob!;
  if (policy.archive) {
    issue(
      ctx,
      'archive keeps the rows, but their linked files are deleted: a restore could not bring a row back with its file',
      'use backup (rows) with blob.backupTo (files) instead of archive',
      [...at, 'archive'],
    );
  }
  if (policy.backup && blob.backupTo === undefined) {
    const where = storeBackend(blob.store.kind).classes.blobs.backupTo;
    issue(
      ctx,
      'backup copies the rows but not their linked files: a restore would bring rows back without their files',
      `add blob.backupTo: where the ${blob.store.kind} store copies the files (${where})`,
      [...at, 'blob', 'backupTo'],
    );
  }
  if (!policy.backup && blob.backupTo !== undefined) {
    issue(
      ctx,
      'blob.backupTo is only used with backup (files are copied with their rows)',
      'add backup for the rows, or remove blob.backupTo',
      [...at, 'blob', 'backupTo'],
    );
  }
  if (blob.backupTo !== undefined && blob.store.kind === 'fs' && isInsideDirectory(blob.store.root, blob.backupTo)) {
    issue(
      ctx,
      `${blob.backupTo} is inside the linked files' root ${blob.store.root}`,
      'choose a backup directory outside the root',
      [...at, 'blob', 'backupTo'],
    );
  }
}

/**
 * Compressing renames files (`x` → `x.gz`): a root that also holds a rows policy's linked files
 * would break the rows' links (their files gone, orphan `.gz` files in their place).
 */
function checkCompressedRoot(
  ctx: z.RefinementCtx,
  policies: Array<z.output<typeof Policy>>,
  store: z.output<typeof BlobStore>,
  at: PropertyKey[],
): void {
  if (store.kind !== 'fs') return;
  for (const other of policies) {
    if (other.class !== 'rows' || other.blob?.store.kind !== 'fs') continue;
    const linkedRoot = other.blob.store.root;
    if (!isInsideDirectory(store.root, linkedRoot) && !isInsideDirectory(linkedRoot, store.root)) continue;
    issue(
      ctx,
      `${store.root} overlaps ${linkedRoot}, where rows policy "${other.name}" links its files: compressing renames them`,
      'remove compress, or keep the linked files out of this root',
      at,
    );
  }
}

function isInsideDirectory(root: string, candidate: string): boolean {
  const relative = path.relative(path.resolve(root), path.resolve(candidate));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function retentionDurations(retention: RetentionSpec): Array<[PropertyKey[], string]> {
  if (typeof retention === 'string') return [[[], retention]];
  const entries: Array<[PropertyKey[], string]> = Object.entries(retention.rules).map(([value, duration]) => [
    ['rules', value],
    duration,
  ]);
  if (retention.default !== undefined) entries.push([['default'], retention.default]);
  return entries;
}

export type RetentionConfig = z.output<typeof Config>;
export type RetentionConfigInput = z.input<typeof Config>;
export type PolicyConfig = z.output<typeof Policy>;
export type { DiskSettings, EmergencyConfig } from './disk.ts';
