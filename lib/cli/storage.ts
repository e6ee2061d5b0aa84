import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { isPolicyRun } from '../core/control.ts';
import { describeCause } from '../errors.ts';
import { analyzeStorage, type StorageAnalysis, type StorageGroup } from '../reports/storage.ts';
import { withOpenStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';
import { parsePositiveInt } from './flags.ts';
import { bytes, table, when } from './format.ts';

export interface StorageFlags {
  policy?: string[];
  limit?: string;
  json?: boolean;
}

export interface StorageOptions {
  policies: PolicyConfig[];
  limit: number;
  json: boolean;
}

/** Items walked per policy by default: enough for a disk or a prefix; past it the figures say so. */
const DEFAULT_LIMIT = 1_000_000;
/** Prefixes and purposes printed per policy (JSON has them all). */
const SHOWN = 10;

/** Checked before the control store opens; no --policy: every policy. */
export function parseStorageFlags(config: RetentionConfig, flags: StorageFlags): StorageOptions {
  const names = flags.policy ?? [];
  return {
    policies: selectPolicies(config, names, names.length === 0),
    limit: parsePositiveInt('--limit', flags.limit) ?? DEFAULT_LIMIT,
    json: flags.json ?? false,
  };
}

interface Unreachable {
  policy: string;
  error: string;
}

/**
 * "What is using the space?": per policy, items and bytes per top-level directory or prefix and
 * per purpose, what a run would free now, what arrived since its last run. Read-only; a policy
 * whose store cannot be read is named and the command exits 1, the others answer.
 */
export async function storageCommand(session: Session, options: StorageOptions): Promise<number> {
  const answers = await Promise.all(options.policies.map((policy) => analyze(session, policy, options.limit)));
  const analyses = answers.filter((answer): answer is StorageAnalysis => 'total' in answer);
  const failed = answers.filter((answer): answer is Unreachable => 'error' in answer);
  if (options.json)
    session.io.stdout.write(`${JSON.stringify({ policies: analyses, unreachable: failed }, null, 2)}\n`);
  else session.io.stdout.write(describe(analyses));
  for (const { policy, error } of failed)
    session.io.stderr.write(`error: policy ${policy}: cannot read its store: ${error}\n`);
  return failed.length > 0 ? 1 : 0;
}

async function analyze(session: Session, policy: PolicyConfig, limit: number): Promise<StorageAnalysis | Unreachable> {
  try {
    return await withOpenStore(policy, async (store) => {
      const [now, holds, runs] = await Promise.all([
        // Database rows are judged by the database's clock, as a run would judge them.
        store.clock ? store.clock.now() : session.clock.now(),
        session.control.listHolds(policy.name),
        session.control.listRuns({ policy: policy.name, limit: 20 }),
      ]);
      const lastLive = runs.find(isPolicyRun);
      return analyzeStorage(store, policy, { now, holds, lastRunAt: lastLive?.startedAt ?? null, limit });
    });
  } catch (error) {
    return { policy: policy.name, error: describeCause(error) };
  }
}

function describe(analyses: StorageAnalysis[]): string {
  const summary = table(
    ['policy', 'store', 'items', 'size', 'eligible', 'would free', 'held', 'since last run', 'oldest'],
    analyses.map((analysis) => [
      analysis.policy,
      analysis.store,
      `${analysis.total.items}${analysis.complete ? '' : '+'}`,
      size(analysis, analysis.total.bytes),
      analysis.total.eligible,
      size(analysis, analysis.total.bytesToFree),
      analysis.total.held,
      analysis.sinceLastRun
        ? `+${analysis.sinceLastRun.items} (${size(analysis, analysis.sinceLastRun.bytes)})`
        : 'never ran',
      when(analysis.oldest),
    ]),
  );
  const details = analyses.flatMap((analysis) => [
    ...(analysis.complete ? [] : [`\n${analysis.policy}: stopped after ${analysis.total.items} items (--limit)`]),
    `\n${groups(`${analysis.policy} by directory or prefix`, analysis, analysis.byPrefix)}`,
    ...(analysis.byPurpose ? [`\n${groups(`${analysis.policy} by purpose`, analysis, analysis.byPurpose)}`] : []),
  ]);
  return `${[summary, ...details].join('\n')}\n`;
}

function groups(title: string, analysis: StorageAnalysis, list: StorageGroup[]): string {
  const shown = list.slice(0, SHOWN);
  const more = list.length > SHOWN ? `\n  … ${list.length - SHOWN} more (--json lists them all)` : '';
  return `${title}:\n${table(
    ['', 'items', 'size', 'eligible', 'would free', 'held'],
    shown.map((group) => [
      group.name,
      group.items,
      size(analysis, group.bytes),
      group.eligible,
      size(analysis, group.bytesToFree),
      group.held,
    ]),
  )}${more}`;
}

/** Stores that do not report sizes (rows without a `size` column, tokens) show `-`, not 0 B. */
function size(analysis: StorageAnalysis, count: number): string {
  return analysis.sizesKnown ? bytes(count) : '-';
}
