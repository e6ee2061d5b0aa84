import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { assessPolicy } from '../../lib/reports/health.ts';
import { hourlyFilesPolicy, runRecord } from '../support/runs.ts';

const NOW = new Date('2025-03-10T12:20:00Z');
const OPTIONS = { missedAfterMs: 15 * 60_000, runsRead: 10 };

const policy = (overrides: Record<string, unknown> = {}) => hourlyFilesPolicy({ budget: '10m', ...overrides });
const run = (
  startedMinutesAgo: number,
  status: RunRecord['status'],
  report: Partial<RunReport> = {},
  dryRun = false,
): RunRecord =>
  runRecord(
    NOW,
    startedMinutesAgo,
    status,
    { trigger: 'scheduled', deleted: 5, failed: 1, oldestOverdueSeconds: 30, ...report },
    dryRun,
  );

describe('assessPolicy', () => {
  it.each([
    // Due at 12:00, 20 minutes ago: past the 15-minute allowance.
    [
      'the 12:00 run did not start',
      [run(80, 'completed')],
      /^missed: the run due at 2025-03-10T12:00:00.000Z did not start/,
    ],
    ['only a dry run happened since', [run(5, 'completed', {}, true), run(80, 'completed')], /^missed/],
    [
      'only a reconcile run over its orphans happened since',
      [run(5, 'completed', { trigger: 'reconcile' }), run(80, 'completed')],
      /^missed/,
    ],
    ['a run hangs past budget + allowance', [run(30, 'running'), run(80, 'completed')], /^stuck: run run-30/],
    [
      'the last decisive run failed (a later skipped_locked does not hide it)',
      [run(2, 'skipped_locked'), run(20, 'failed', { error: { code: 'store_error', message: 'boom' } })],
      /^failed: run run-20: boom/,
    ],
    [
      'the last run breached its SLA',
      [run(20, 'completed', { sla: { status: 'breach', reasons: ['overdue: 3d is 300% of the limit 1d'] } })],
      /^sla breach: run run-20: overdue/,
    ],
  ])('unhealthy when %s', (_, runs, problem) => {
    const health = assessPolicy(policy(), runs, NOW, OPTIONS);
    expect(health.status).toBe('unhealthy');
    expect(health.problems).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });

  it('healthy after the due run, with 24h totals, overdue and next run', () => {
    const health = assessPolicy(
      policy(),
      [run(20, 'completed'), run(80, 'completed'), run(25 * 60, 'completed')],
      NOW,
      OPTIONS,
    );
    expect(health).toMatchObject({
      status: 'healthy',
      problems: [],
      last_run: { run_id: 'run-20', status: 'completed', trigger: 'scheduled' },
      next_run: '2025-03-10T13:00:00.000Z',
      deleted_last_24h: 10,
      failed_last_24h: 2,
      oldest_overdue_seconds: 30,
      sla_status: 'ok',
      window_complete: true,
    });
  });

  it('a paused policy is healthy with an SLA warning; a disabled one is never unhealthy', () => {
    expect(
      assessPolicy(
        policy(),
        [run(20, 'skipped_paused', { sla: { status: 'warning', reasons: ['paused: …'] } })],
        NOW,
        OPTIONS,
      ),
    ).toMatchObject({ status: 'healthy', sla_status: 'warning' });
    expect(assessPolicy(policy({ enabled: false }), [], NOW, OPTIONS)).toMatchObject({
      status: 'disabled',
      problems: [],
      next_run: null,
    });
  });

  it('says when the 24h window held more runs than were read', () => {
    const runs = Array.from({ length: 10 }, (_, index) => run(5 + index, 'completed'));
    expect(assessPolicy(policy({ schedule: '* * * * *' }), runs, NOW, OPTIONS).window_complete).toBe(false);
  });
});
