import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { emfDocument } from '../../lib/observe/metrics.ts';
import { classifySla, reasonKey } from '../../lib/policy/sla.ts';

const thresholds = { maxDurationSeconds: 600, maxOverdueSeconds: 86_400, maxFailureRate: 0.01, warnAt: 0.8 };
const base = { status: 'completed' as const, durationSeconds: 10, oldestOverdueSeconds: 0, deleted: 100, failed: 0 };

describe('classifySla', () => {
  it.each([
    [base, 'ok', []],
    [{ ...base, durationSeconds: 480 }, 'warning', ['duration']],
    [{ ...base, durationSeconds: 600 }, 'breach', ['duration']],
    [{ ...base, oldestOverdueSeconds: 70_000 }, 'warning', ['overdue']],
    [{ ...base, oldestOverdueSeconds: 90_000 }, 'breach', ['overdue']],
    [{ ...base, deleted: 99, failed: 1 }, 'breach', ['failure_rate']],
    [{ ...base, deleted: 1000, failed: 9 }, 'warning', ['failure_rate']],
    [{ ...base, oldestOverdueSeconds: null }, 'ok', []],
    [{ ...base, status: 'failed' as const }, 'breach', ['run_failed']],
    [{ ...base, status: 'aborted_limit' as const }, 'breach', ['limit']],
    [{ ...base, status: 'skipped_paused' as const }, 'warning', ['paused']],
    [
      { ...base, status: 'partial' as const, durationSeconds: 500, oldestOverdueSeconds: 100_000 },
      'breach',
      ['duration', 'overdue'],
    ],
  ])('%j → %s %j', (input, status, keys) => {
    const result = classifySla(input, thresholds);
    expect(result.status).toBe(status);
    expect(result.reasons.map(reasonKey)).toEqual(keys);
  });

  it('explains a breach in words an operator can act on', () => {
    expect(classifySla({ ...base, oldestOverdueSeconds: 2 * 86_400 }, thresholds).reasons).toEqual([
      'overdue: 2d is 200% of the limit 1d',
    ]);
  });
});

describe('emfDocument', () => {
  it('is valid CloudWatch EMF: namespace, policy dimension, declared metrics present as numbers', () => {
    const report = {
      runId: 'r1',
      policy: 'temp-files',
      dataClass: 'blobs',
      dryRun: false,
      status: 'completed',
      deleted: 3,
      failed: 0,
      held: 1,
      scanned: 10,
      bytesFreed: 300,
      durationSeconds: 1.5,
      budgetUsedPercent: 0.3,
      backlog: null,
      oldestOverdueSeconds: 0,
      attention: { open: 2, after: 3 },
      compressed: { count: 4, bytesBefore: 1_000, bytesAfter: 100, kept: 0, failed: 0 },
      finishedAt: '2026-11-22T12:00:00.000Z',
      sla: { status: 'breach', reasons: [] },
    } as unknown as RunReport;
    const document = emfDocument(report) as Record<string, unknown> & {
      _aws: {
        Timestamp: number;
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string; Unit: string }>;
        }>;
      };
    };
    const [directive] = document._aws.CloudWatchMetrics;
    expect(document._aws.Timestamp).toBe(Date.parse('2026-11-22T12:00:00.000Z'));
    expect(directive?.Namespace).toBe('Retention');
    expect(directive?.Dimensions).toEqual([['policy']]);
    expect(document.policy).toBe('temp-files');
    const names = directive!.Metrics.map((metric) => metric.Name);
    expect(names).toEqual(
      expect.arrayContaining([
        'Deleted',
        'Failed',
        'Held',
        'DurationSeconds',
        'BudgetUsedPercent',
        'OldestOverdueSeconds',
        'SlaBreach',
        'AttentionOpen',
      ]),
    );
    expect(names).not.toContain('Backlog');
    expect(document.AttentionOpen).toBe(2);
    expect(document).toMatchObject({ Compressed: 4, BytesSavedByCompression: 900 });
    for (const name of names) expect(typeof document[name]).toBe('number');
    expect(document.SlaBreach).toBe(1);
  });
});
