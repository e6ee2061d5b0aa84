import { describe, expect, it } from 'vitest';
import type { PauseState, RunRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { assessCompliance, complianceReport, type PolicyRecords } from '../../lib/reports/compliance.ts';
import { hourlyFilesPolicy, runRecord } from '../support/runs.ts';

// Hourly schedule: the 12:00 run is due; 20 minutes later it is past the 15-minute allowance.
const NOW = new Date('2025-03-10T12:20:00Z');
const DAY_MINUTES = 24 * 60;
const WINDOW = { since: new Date(NOW.getTime() - 30 * DAY_MINUTES * 60_000), until: NOW, runsRead: 100 };
const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);

const policy = hourlyFilesPolicy;
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
    {
      status: status as RunReport['status'],
      deleted: 5,
      failed: 0,
      held: 1,
      bytesFreed: 100,
      backlog: 0,
      oldestOverdueSeconds: 0,
      ...report,
    },
    dryRun,
  );

function records(runs: RunRecord[], extra: Partial<PolicyRecords> = {}): PolicyRecords {
  return { runs, holds: 0, pause: null, pendingIntents: 0, ...extra };
}

describe('assessCompliance', () => {
  it('counts live runs in the window by status, totals them, and is compliant when all is well', () => {
    const runs = [
      run(2, 'running'),
      run(5, 'completed', {}, true), // dry run: left out
      run(20, 'completed', { held: 2 }),
      run(80, 'skipped_locked', { deleted: 0, bytesFreed: 0 }),
      run(140, 'partial', {
        deleted: 7,
        failed: 1,
        bytesFreed: 50,
        sla: { status: 'warning', reasons: ['failure_rate: …'] },
      }),
      run(31 * DAY_MINUTES, 'failed'), // before the window
    ];
    const result = assessCompliance(policy(), records(runs, { holds: 3 }), WINDOW);
    expect(result).toMatchObject({
      policy: 'files',
      data_class: 'blobs',
      enabled: true,
      schedule: '0 * * * *',
      retention: [{ rule: 'retention: 30d', cutoff: '2025-02-08T12:20:00.000Z' }],
      verdict: 'compliant',
      reasons: [],
      runs: {
        total: 4,
        completed: 1,
        partial: 1,
        skipped_locked: 1,
        running: 1,
        failed: 0,
        skipped_paused: 0,
        aborted_limit: 0,
      },
      totals: { deleted: 12, failed: 1, bytes_freed: 150 },
      sla: { ok: 2, warning: 1, breach: 0 },
      // The newest run that decided something: the running one has not yet.
      latest_run: {
        run_id: 'run-20',
        status: 'completed',
        started_at: minutesAgo(20).toISOString(),
        backlog: 0,
        oldest_overdue_seconds: 0,
        held: 2,
      },
      holds: 3,
      paused: null,
      pending_intents: 0,
      health: { status: 'healthy', problems: [] },
      window_complete: true,
    });
  });

  it('a backlog overdue within sla.maxOverdue is compliant; beyond it needs attention', () => {
    const within = assessCompliance(
      policy(),
      records([run(20, 'completed', { backlog: 4, oldestOverdueSeconds: 3600 })]),
      WINDOW,
    );
    expect(within.verdict).toBe('compliant');
    const beyond = assessCompliance(
      policy(),
      records([run(20, 'completed', { backlog: 4, oldestOverdueSeconds: 2 * 86_400 })]),
      WINDOW,
    );
    expect(beyond.verdict).toBe('attention');
    expect(beyond.reasons).toEqual([
      'backlog: 4 item(s) still overdue after run run-20, the oldest 2d past its cutoff (limit 1d); `retention run --policy files` to catch up, see `retention history --policy files` for why runs leave them',
    ]);
  });

  it.each([
    [
      'the last run failed',
      records([
        run(20, 'failed', {
          error: { code: 'store_error', message: 'boom' },
          sla: { status: 'breach', reasons: ['run_failed: the run failed'] },
        }),
      ]),
      [
        'failed: run run-20: boom; see `retention history --policy files`',
        'sla breach: run run-20: run_failed: the run failed; see `retention history --policy files`',
      ],
    ],
    [
      'an earlier run in the window failed',
      records([run(20, 'completed'), run(3 * DAY_MINUTES, 'failed'), run(5 * DAY_MINUTES, 'failed')]),
      [
        `2 earlier run(s) in the window failed (latest: run run-${3 * DAY_MINUTES} at ${minutesAgo(3 * DAY_MINUTES).toISOString()}); see \`retention history --policy files\``,
      ],
    ],
    [
      'deletions are not yet confirmed in the audit trail',
      records([run(20, 'completed')], { pendingIntents: 2 }),
      [
        '2 deletion(s) not yet confirmed in the audit trail (left by an interrupted run): the next run resolves them; run `retention run --policy files` now, then check `retention audit --policy files`',
      ],
    ],
    [
      'the scheduled run did not start',
      records([run(80, 'completed')]),
      [
        'missed: the run due at 2025-03-10T12:00:00.000Z did not start (last run 2025-03-10T11:00:00.000Z); check that the schedule is deployed and firing (`retention status`), or run it now: `retention run --policy files`',
      ],
    ],
    [
      'the policy is paused everywhere',
      records([run(20, 'skipped_paused', { backlog: null, oldestOverdueSeconds: null })], {
        pause: { scope: '*', by: 'cli:ops', reason: 'incident 7', at: minutesAgo(60) } satisfies PauseState,
      }),
      [
        'paused by cli:ops since 2025-03-10T11:20:00.000Z (incident 7): nothing is being deleted; lift it with `retention resume --all`',
      ],
    ],
    [
      'the latest run measured no backlog',
      records([run(20, 'skipped_paused', { backlog: null, oldestOverdueSeconds: null })]),
      [
        'backlog unknown: run run-20 (skipped_paused) did not measure it; `retention run --policy files` measures it and deletes what is due',
      ],
    ],
  ])('needs attention when %s', (_, input, reasons) => {
    const result = assessCompliance(policy(), input, WINDOW);
    expect(result.verdict).toBe('attention');
    expect(result.reasons).toEqual(reasons);
  });

  it('a disabled policy is disabled, whatever its history', () => {
    const result = assessCompliance(
      policy({ enabled: false }),
      records([run(20, 'failed')], { pendingIntents: 1 }),
      WINDOW,
    );
    expect(result).toMatchObject({
      verdict: 'disabled',
      reasons: [],
      enabled: false,
      runs: { total: 1, failed: 1 },
      pending_intents: 1,
    });
  });

  it('describes per-purpose retention with each rule and its cutoff', () => {
    const perPurpose = policy({ retention: { by: 'prefix', rules: { 'invoices/': '1y' }, default: '30d' } });
    expect(assessCompliance(perPurpose, records([run(20, 'completed')]), WINDOW).retention).toEqual([
      { rule: 'prefix=invoices/: 1y', cutoff: '2024-03-10T12:20:00.000Z' },
      { rule: 'default: 30d', cutoff: '2025-02-08T12:20:00.000Z' },
    ]);
  });

  it('cuts at the window start and says when more runs were in it than were read', () => {
    const runs = [run(20, 'completed'), run(80, 'completed'), run(140, 'completed')];
    const lastHours = { since: minutesAgo(120), until: NOW, runsRead: 3 };
    expect(assessCompliance(policy(), records(runs), lastHours)).toMatchObject({
      runs: { total: 2, completed: 2 },
      totals: { deleted: 10 },
      window_complete: true,
    });
    expect(assessCompliance(policy(), records(runs), { ...lastHours, since: minutesAgo(150) }).window_complete).toBe(
      false,
    );
  });
});

describe('complianceReport', () => {
  it('reports the window and every policy given', () => {
    const report = complianceReport([{ policy: policy(), records: records([run(20, 'completed')]) }], WINDOW);
    expect(report).toMatchObject({
      since: '2025-02-08T12:20:00.000Z',
      until: NOW.toISOString(),
      policies: [{ policy: 'files', verdict: 'compliant' }],
    });
  });
});
