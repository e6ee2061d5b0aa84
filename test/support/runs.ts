import { parseConfig } from '../../lib/config/load.ts';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import type { RunRecord } from '../../lib/core/control.ts';
import type { RunReport } from '../../lib/core/types.ts';

/** An hourly fs policy named `files`, for tests of run history (health, compliance). */
export function hourlyFilesPolicy(overrides: Record<string, unknown> = {}): PolicyConfig {
  return parseConfig({
    policies: [
      {
        name: 'files',
        class: 'blobs',
        store: { kind: 'fs', root: '/data' },
        retention: '30d',
        schedule: '0 * * * *',
        ...overrides,
      },
    ],
  }).policies[0]!;
}

/** A run of `files` that started `startedMinutesAgo` before `now` and took a minute (none while `running`). */
export function runRecord(
  now: Date,
  startedMinutesAgo: number,
  status: RunRecord['status'],
  report: Partial<RunReport>,
  dryRun = false,
): RunRecord {
  const startedAt = new Date(now.getTime() - startedMinutesAgo * 60_000);
  const finished = status === 'running' ? null : new Date(startedAt.getTime() + 60_000);
  return {
    runId: `run-${startedMinutesAgo}`,
    policy: 'files',
    status,
    dryRun,
    startedAt,
    finishedAt: finished,
    report: finished ? ({ sla: { status: 'ok', reasons: [] }, ...report } as RunReport) : null,
  };
}
