import type { RunReport } from '../core/types.ts';

/**
 * CloudWatch Embedded Metric Format: one JSON line per run in the log stream, namespace
 * `Retention`, dimension `policy`. CloudWatch extracts the metrics; locally it is just a line.
 */
export const METRIC_NAMESPACE = 'Retention';

type Unit = 'Count' | 'Seconds' | 'Percent' | 'Bytes';

const METRICS: Array<{ name: string; unit: Unit; value: (report: RunReport) => number | null }> = [
  { name: 'Deleted', unit: 'Count', value: (r) => r.deleted },
  { name: 'Failed', unit: 'Count', value: (r) => r.failed },
  { name: 'Held', unit: 'Count', value: (r) => r.held },
  { name: 'Scanned', unit: 'Count', value: (r) => r.scanned },
  { name: 'BytesFreed', unit: 'Bytes', value: (r) => r.bytesFreed },
  { name: 'DurationSeconds', unit: 'Seconds', value: (r) => r.durationSeconds },
  { name: 'BudgetUsedPercent', unit: 'Percent', value: (r) => r.budgetUsedPercent },
  { name: 'Backlog', unit: 'Count', value: (r) => r.backlog },
  { name: 'OldestOverdueSeconds', unit: 'Seconds', value: (r) => r.oldestOverdueSeconds },
  { name: 'SlaBreach', unit: 'Count', value: (r) => (r.sla.status === 'breach' ? 1 : 0) },
  // Items that failed in `attentionAfter` consecutive runs and wait for an operator (alarm on > 0).
  { name: 'AttentionOpen', unit: 'Count', value: (r) => r.attention?.open ?? null },
  // Policies with a compress tier: files compressed, and the bytes that saved.
  { name: 'Compressed', unit: 'Count', value: (r) => r.compressed?.count ?? null },
  {
    name: 'BytesSavedByCompression',
    unit: 'Bytes',
    value: (r) => (r.compressed ? r.compressed.bytesBefore - r.compressed.bytesAfter : null),
  },
];

export function emfDocument(report: RunReport): Record<string, unknown> {
  const values: Record<string, number> = {};
  const declared: Array<{ Name: string; Unit: Unit }> = [];
  for (const metric of METRICS) {
    const value = metric.value(report);
    if (value === null) continue;
    values[metric.name] = value;
    declared.push({ Name: metric.name, Unit: metric.unit });
  }
  return {
    _aws: {
      Timestamp: Date.parse(report.finishedAt),
      CloudWatchMetrics: [{ Namespace: METRIC_NAMESPACE, Dimensions: [['policy']], Metrics: declared }],
    },
    policy: report.policy,
    data_class: report.dataClass,
    correlation_id: report.runId,
    status: report.status,
    dry_run: report.dryRun,
    ...values,
  };
}
