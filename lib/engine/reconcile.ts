import type { PolicyConfig } from '../config/schema.ts';
import type { LinkedFileIndex, Store } from '../core/store.ts';
import type { RunReport } from '../core/types.ts';
import { ConfigError, StoreError } from '../errors.ts';
import type { RunDeps, RunOptions } from './options.ts';
import {
  type OrphanCounts,
  type OrphanStore,
  type OrphanTest,
  orphanStore,
  sidecarsWithoutMain,
  unreferencedFiles,
} from './orphans.ts';
import { runPolicy } from './run.ts';

/**
 * `retention reconcile`: where storage and database disagree. For a rows policy with linked
 * files: files in the linked store that no row names (orphans), and rows whose file is gone; for
 * an fs policy with declared sidecars: sidecars whose main file is gone. Orphans are deleted only
 * by a run of the engine in the policy's name (orphans.ts), so a dry run lists exactly what a live
 * run would delete, and a live run takes the policy's lease, honours its pause, holds and limits,
 * and writes an audit record per file. Rows are only reported, never deleted here.
 */
export type ReconcileMode = 'orphans' | 'sidecars';

type BlobsPolicy = Extract<PolicyConfig, { class: 'blobs' }>;

/** Rows listed whose file is gone; beyond it they are counted only. */
export const MISSING_ROWS_LISTED = 10_000;
/** The longest duration a policy takes: no overdue threshold. */
const NO_OVERDUE_SLA = '1000y';
/** Rows per page (each page one presence check on the files' store). */
const LINKS_PAGE = 1_000;

export interface ReconcileReport {
  policy: string;
  mode: ReconcileMode;
  /** Where the files are. */
  store: string;
  /** Files younger than this are never orphans. */
  grace: string;
  dryRun: boolean;
  /** What the run's listing pass went through (besides the orphans in `run`). */
  files: OrphanCounts;
  /** The engine's run over the orphans, with every orphan in `items` (would_delete, deleted, held, kept, …). */
  run: RunReport;
  /** Rows in the policy's scope whose file is not in the files' store (rows policies only). */
  rowsWithoutFile?: {
    count: number;
    rows: Array<{ key: string; timestamp: string; file: string }>;
    /** More rows than listed (`MISSING_ROWS_LISTED`). */
    truncated: boolean;
  };
}

/** What reconcile does for this policy, checked before anything opens: a ConfigError (exit 2) when nothing. */
export function reconcileMode(policy: PolicyConfig, path: string): ReconcileMode {
  if (policy.class === 'rows' && policy.blob) return 'orphans';
  if (policy.class === 'blobs' && policy.store.kind === 'fs' && policy.store.sidecars) return 'sidecars';
  throw notReconcilable(policy, path);
}

function notReconcilable(policy: PolicyConfig, path: string): ConfigError {
  return ConfigError.single(
    path,
    `policy ${JSON.stringify(policy.name)} has no linked files (rows with "blob") and no "store.sidecars" (fs)`,
    'reconcile a rows policy with a blob column, or an fs policy that declares sidecars',
  );
}

/**
 * Runs the engine over the policy's orphans (`options.dryRun`: list only) and, for rows, lists
 * the rows whose file is gone. `deps.store` is the policy's own store, opened.
 */
export async function reconcilePolicy(
  policy: PolicyConfig,
  grace: string,
  options: RunOptions,
  deps: RunDeps,
): Promise<ReconcileReport> {
  const { mode, orphans, filesPolicy, links } = await orphansOf(policy, deps.store, grace);
  // Listed before the run: the stores then take the run's deadline, which may have passed when it ends.
  const missing = links ? await rowsWithoutFile(links, await links.files()) : undefined;
  // The policy's checkpoint is a position in its own store, not in the files': left alone.
  const run = await runPolicy(
    filesPolicy,
    { ...options, list: true, checkpoint: false, configuredAs: policy },
    { ...deps, store: orphans },
  );
  return {
    policy: policy.name,
    mode,
    store: orphans.location,
    grace,
    dryRun: options.dryRun,
    files: { ...orphans.counts },
    run,
    ...(missing ? { rowsWithoutFile: missing } : {}),
  };
}

interface OrphanRun {
  mode: ReconcileMode;
  orphans: OrphanStore;
  /** The policy the engine runs over them. */
  filesPolicy: BlobsPolicy;
  links?: LinkedFileIndex;
}

async function orphansOf(policy: PolicyConfig, store: Store, grace: string): Promise<OrphanRun> {
  if (policy.class === 'rows' && policy.blob) {
    const links = store.linked;
    if (!links) throw new StoreError(`${store.location}: the store offers no links to its files`, {});
    const blobStore = policy.blob.store;
    const test = unreferencedFiles(links, blobStore.kind === 'fs' ? blobStore.sidecars : undefined);
    const orphans = orphanStore(await links.files(), test, store);
    return { mode: 'orphans', orphans, filesPolicy: derivedPolicy(policy, blobStore, test, grace), links };
  }
  if (policy.class === 'blobs' && policy.store.kind === 'fs' && policy.store.sidecars) {
    const test = sidecarsWithoutMain(store, policy.store.sidecars);
    return {
      mode: 'sidecars',
      orphans: orphanStore(store, test),
      filesPolicy: derivedPolicy(policy, policy.store, test, grace),
    };
  }
  throw notReconcilable(policy, '--policy');
}

/**
 * The policy as a `blobs` policy over its files, in its own name (lease, pause, holds, history,
 * audit trail are the policy's), whose one rule is the orphan test: per-attribute retention with
 * the grace period, so the planner's rule reads `orphan=no row in <table>.<column>: 24h`. Files
 * the test does not label are unclassified, never eligible. No backup: orphans are files no
 * restore of a row would bring back.
 */
function derivedPolicy(policy: PolicyConfig, store: BlobsPolicy['store'], test: OrphanTest, grace: string) {
  const { name, description, schedule, enabled, budget, batchSize, limits, sla, allowShortRetention, attentionAfter } =
    policy;
  return {
    name,
    ...(description !== undefined ? { description } : {}),
    schedule,
    enabled,
    budget,
    batchSize,
    limits,
    // The policy's maxOverdue is a promise about its own items, not about files it never governed:
    // an old orphan is reported (oldestOverdueSeconds), never an SLA breach of the policy.
    sla: { ...sla, maxOverdue: NO_OVERDUE_SLA },
    allowShortRetention,
    attentionAfter,
    class: 'blobs',
    store,
    retention: { by: test.attribute, rules: { [test.value]: grace } },
  } satisfies BlobsPolicy;
}

/** Rows in scope whose file the files' store does not have, in key order; listed up to MISSING_ROWS_LISTED. */
async function rowsWithoutFile(links: LinkedFileIndex, files: Store): Promise<ReconcileReport['rowsWithoutFile']> {
  const found: NonNullable<ReconcileReport['rowsWithoutFile']> = { count: 0, rows: [], truncated: false };
  let cursor: string | undefined;
  for (;;) {
    const page = await links.links({ limit: LINKS_PAGE, ...(cursor !== undefined ? { cursor } : {}) });
    const present = await files.present([...new Set(page.rows.map((row) => row.linkedKey))]);
    for (const row of page.rows) {
      if (present.has(row.linkedKey)) continue;
      found.count += 1;
      if (found.rows.length < MISSING_ROWS_LISTED)
        found.rows.push({ key: row.key, timestamp: row.timestamp.toISOString(), file: row.linkedKey });
      else found.truncated = true;
    }
    cursor = page.cursor;
    if (page.done) return found;
  }
}
