import { durationMs } from '../../core/durations.ts';
import type { NativeExpiryInput, NativeExpiryPlan } from '../../core/store.ts';
import type { S3StoreConfig } from './schema.ts';

/**
 * A pure age-by-prefix S3 policy as S3 Lifecycle rules (`retention lifecycle`), or why it cannot
 * be one. Lifecycle counts whole days from an object's creation and rounds the expiry up to the
 * next midnight UTC, so `Days = ceil(retention in days)` never expires an object before the
 * policy would. Where rules overlap, S3 applies the shortest expiration, where the policy applies
 * the longest matching prefix: a nested prefix kept longer than its parent cannot be expressed.
 */
export interface LifecycleRule {
  ID: string;
  Status: 'Enabled';
  Filter: { Prefix: string };
  Expiration: { Days: number };
  NoncurrentVersionExpiration?: { NoncurrentDays: number };
}

const DAY_MS = 86_400_000;
/** S3 accepts at most this many rules per bucket configuration. */
const MAX_RULES = 1_000;

export function lifecyclePlan(store: S3StoreConfig, input: NativeExpiryInput): NativeExpiryPlan {
  const reasons: string[] = [];
  const notes = [
    'S3 Lifecycle counts whole days and expires objects asynchronously (usually within a day or two ' +
      'of the date): the overdue metric of the sweeper, kept scheduled, shows the lag',
    'deletions by Lifecycle are not in this tool’s audit trail: keep the policy scheduled as the ' +
      'verifier (its runs then find nothing to delete, and the report’s backlog stays 0)',
  ];
  const { retention } = input;
  if (typeof retention !== 'string' && retention.by !== 'prefix')
    reasons.push(
      `retention is per "${retention.by}": S3 Lifecycle filters on key prefixes, tags and sizes only ` +
        '(use "by": "prefix", or keep the sweeper)',
    );
  if (store.include || store.exclude)
    reasons.push('include/exclude globs: S3 Lifecycle filters on prefixes only (express the scope as prefixes)');
  if (input.holds.length > 0)
    reasons.push(
      `${input.holds.length} legal hold(s) apply to the policy: S3 Lifecycle would delete held objects ` +
        '(use S3 Object Lock legal holds, which Lifecycle honours, or keep the sweeper)',
    );
  if (input.backup) reasons.push('backup: Lifecycle deletes without a copy (remove backup, or keep the sweeper)');

  const scopes = store.prefixes ?? [store.prefix];
  const wanted = typeof retention === 'string' ? [] : Object.entries(retention.rules);
  const fallback = typeof retention === 'string' ? retention : retention.default;
  const rules: Array<{ prefix: string; retention: string; days: number }> = [];
  for (const scope of scopes) {
    if (fallback) rules.push({ prefix: scope, retention: fallback, days: wholeDays(fallback) });
    for (const [prefix, kept] of wanted) {
      // A rule's prefix narrows the scope, or covers it whole; one outside it matches nothing here.
      const narrowed = prefix.startsWith(scope) ? prefix : scope.startsWith(prefix) ? scope : undefined;
      if (narrowed !== undefined) rules.push({ prefix: narrowed, retention: kept, days: wholeDays(kept) });
    }
  }
  for (const inner of rules)
    for (const outer of rules)
      if (inner !== outer && inner.prefix.startsWith(outer.prefix) && inner.days > outer.days)
        reasons.push(
          `"${inner.prefix}" is kept ${inner.retention}, inside "${outer.prefix || '(the bucket)'}" kept ` +
            `${outer.retention}: S3 applies the shorter where rules overlap, and would expire it early`,
        );
  if (rules.length === 0) reasons.push('no rule applies within the store’s prefixes');
  if (rules.length > MAX_RULES) reasons.push(`${rules.length} rules: S3 takes at most ${MAX_RULES} per bucket`);
  for (const rule of rules)
    if (durationMs(rule.retention) % DAY_MS !== 0)
      notes.push(`"${rule.prefix}" ${rule.retention} becomes ${rule.days} day(s): Lifecycle counts whole days`);
  if (store.versions === 'all')
    notes.push('versions "all": each rule also expires noncurrent versions one day after they become noncurrent');

  const configuration = {
    Rules: rules.map(
      (rule, index): LifecycleRule => ({
        ID: `retention-${input.policy}-${index + 1}`.slice(0, 255),
        Status: 'Enabled',
        Filter: { Prefix: rule.prefix },
        Expiration: { Days: rule.days },
        ...(store.versions === 'all' ? { NoncurrentVersionExpiration: { NoncurrentDays: 1 } } : {}),
      }),
    ),
  };
  return {
    mechanism: 's3_lifecycle',
    equivalent: reasons.length === 0,
    reasons,
    configuration,
    apply:
      `aws s3api put-bucket-lifecycle-configuration --bucket ${store.bucket} ` +
      '--lifecycle-configuration file://lifecycle.json  # replaces the bucket’s rules: merge any you keep',
    notes,
  };
}

function wholeDays(retention: string): number {
  return Math.max(1, Math.ceil(durationMs(retention) / DAY_MS));
}
