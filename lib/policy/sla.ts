import { formatDuration } from '../core/durations.ts';
import type { RunStatus, SlaResult, SlaStatus } from '../core/types.ts';

/**
 * SLA classification (pure): warning at `warnAt` (default 80%) and breach at 100% of each
 * threshold. Each reason starts with a stable key (`duration`, `overdue`, `failure_rate`,
 * `run_failed`, `limit`, `paused`) that alerting uses as the fingerprint.
 */
export interface SlaThresholds {
  maxDurationSeconds: number;
  maxOverdueSeconds: number;
  maxFailureRate: number;
  warnAt: number;
}

export interface SlaInput {
  status: RunStatus;
  durationSeconds: number;
  oldestOverdueSeconds: number | null;
  deleted: number;
  failed: number;
}

const RANK: Record<SlaStatus, number> = { ok: 0, warning: 1, breach: 2 };

export function reasonKey(reason: string): string {
  return reason.split(':', 1)[0] ?? reason;
}

export function classifySla(input: SlaInput, thresholds: SlaThresholds): SlaResult {
  const findings: Array<{ status: SlaStatus; reason: string }> = [];
  const against = (key: string, value: number, limit: number, show: (n: number) => string): void => {
    if (limit <= 0 && value <= 0) return;
    const ratio = limit <= 0 ? Number.POSITIVE_INFINITY : value / limit;
    const status: SlaStatus = ratio >= 1 ? 'breach' : ratio >= thresholds.warnAt ? 'warning' : 'ok';
    if (status !== 'ok') {
      const share = Number.isFinite(ratio) ? `${Math.round(ratio * 100)}% of` : 'over';
      findings.push({ status, reason: `${key}: ${show(value)} is ${share} the limit ${show(limit)}` });
    }
  };
  const seconds = (n: number): string => formatDuration(Math.round(n * 1000));

  if (input.status === 'failed') findings.push({ status: 'breach', reason: 'run_failed: the run failed' });
  if (input.status === 'aborted_limit')
    findings.push({ status: 'breach', reason: 'limit: deletions exceeded the safety limits; nothing was deleted' });
  if (input.status === 'skipped_paused')
    findings.push({ status: 'warning', reason: 'paused: the policy is paused; nothing is being deleted' });

  against('duration', input.durationSeconds, thresholds.maxDurationSeconds, seconds);
  if (input.oldestOverdueSeconds !== null) {
    against('overdue', input.oldestOverdueSeconds, thresholds.maxOverdueSeconds, seconds);
  }
  const attempted = input.deleted + input.failed;
  if (attempted > 0) {
    against(
      'failure_rate',
      input.failed / attempted,
      thresholds.maxFailureRate,
      (n) => `${Math.round(n * 10000) / 100}%`,
    );
  }

  const status = findings.reduce<SlaStatus>(
    (worst, finding) => (RANK[finding.status] > RANK[worst] ? finding.status : worst),
    'ok',
  );
  return { status, reasons: findings.map((finding) => finding.reason) };
}
