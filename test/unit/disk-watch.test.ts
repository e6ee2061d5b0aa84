import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { DiskWatch } from '../../lib/daemon/diskWatch.ts';
import { checkDisks } from '../../lib/disk/monitor.ts';
import { Logger } from '../../lib/observe/log.ts';
import { FakeTime } from '../support/daemonFakes.ts';
import { FakeDisk } from '../support/fakeDisk.ts';
import { ago, FakeRuns, item, policyWith } from '../support/fakeRuns.ts';

/**
 * The daemon's disk monitor end to end over fakes: a critical file system starts an emergency run
 * of the real engine (in-memory store) whose deletions free the fake disk; the run stops once the
 * disk is under its warning line, and checks go on every interval.
 */
const HOUR = 3_600_000;
const START = '2024-06-01T00:00:00.000Z';

describe('daemon: disk watch', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'disk-watch-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function setUp(options: { emergency?: boolean; failingChecks?: number } = {}) {
    let failingChecks = options.failingChecks ?? 0;
    const time = new FakeTime(START);
    const logs = policyWith({
      name: 'logs',
      batchSize: 2,
      store: { kind: 'fs', root: '/srv/data/logs' },
      ...(options.emergency === false ? {} : { emergency: { keepNewest: 1 } }),
    });
    const cache = policyWith({ name: 'cache', store: { kind: 'fs', root: '/var/cache/app' } });
    const runs = new FakeRuns(
      { items: Array.from({ length: 10 }, (_, index) => item(`f-${index}`, ago((10 - index) * HOUR))) },
      logs,
    );
    const disk = new FakeDisk();
    // Each file is 2% of the disk: 10 files → 90% (critical); under 80% once 4 or fewer are left.
    disk.mount('/srv/data', 'ext4:1', () => 70 + 2 * runs.store.keys().length);
    disk.mount('/var', 'ext4:2', 40);
    const lines: Array<Record<string, unknown>> = [];
    const log = new Logger({
      sink: { write: (line) => void lines.push(JSON.parse(line)) },
      level: 'info',
      clock: time,
    });
    const settings = { warning: 80, critical: 90, cooldown: '6h', interval: '5m' };
    const reports: RunReport[] = [];
    const errors: string[] = [];
    const watch = new DiskWatch([logs, cache], settings, {
      log,
      timer: time,
      probe: disk,
      check: async () => {
        if (failingChecks-- > 0) throw new Error('EACCES: permission denied, open alert file');
        return checkDisks([logs, cache], settings, {
          probe: disk,
          clock: time,
          log,
          alertFile: path.join(dir, `${Math.random()}.json`),
        });
      },
      runEmergency: async (policy, emergency) => {
        expect(policy.name).toBe('logs');
        const report = await runs.run({ trigger: 'scheduled', list: false, emergency });
        reports.push(report);
        return report;
      },
      isPaused: async (policy) => (await runs.control.pausedBy(policy)) !== null,
      captureError: (_error, stage) => void errors.push(stage),
    });
    return { time, runs, disk, lines, reports, errors, watch };
  }

  it('critical: an emergency run of the policy with emergency rules, oldest first, stopping once under the warning line', async () => {
    const { runs, lines, reports, watch, time } = setUp();
    watch.start();
    await watch.idle();
    expect(reports).toMatchObject([
      { status: 'partial', stopReason: 'disk_ok', deleted: 6, emergency: { reason: 'disk_critical', usedPercent: 90 } },
    ]);
    expect(runs.store.keys()).toEqual(['f-6', 'f-7', 'f-8', 'f-9']);
    expect(lines.filter((line) => line.event === 'disk_alert')).toMatchObject([
      { level: 'error', disk_level: 'critical' },
    ]);
    expect(lines.find((line) => line.event === 'emergency_finished')).toMatchObject({
      stop_reason: 'disk_ok',
      deleted: 6,
    });

    // The next check, one interval later, finds the disk fine: no run.
    await time.advanceTo('2024-06-01T00:05:00.000Z');
    await watch.idle();
    expect(reports).toHaveLength(1);
    expect(watch.lastReport()?.filesystems.map((status) => status.level)).toEqual(['ok', 'ok']);

    // Stopped: no further check.
    await watch.stop();
    runs.store.items.set('late', item('late', ago(HOUR)));
    await time.advanceTo('2024-06-01T01:00:00.000Z');
    expect(lines.filter((line) => line.event === 'emergency_started')).toHaveLength(1);
  });

  it('critical with no emergency rules on that file system: said, and nothing deleted', async () => {
    const { runs, lines, reports, watch } = setUp({ emergency: false });
    watch.start();
    await watch.idle();
    expect(reports).toEqual([]);
    expect(runs.store.keys()).toHaveLength(10);
    expect(lines.find((line) => line.event === 'disk_critical_no_emergency')).toMatchObject({ policies: ['logs'] });
  });

  it('a paused policy gets no emergency run (nor a skipped run in history at every check), and says so', async () => {
    const { runs, lines, reports, watch } = setUp();
    await runs.control.pause('*', 'ops', 'incident');
    watch.start();
    await watch.idle();
    expect(reports).toEqual([]);
    expect(runs.control.runs.size).toBe(0);
    expect(lines.find((line) => line.event === 'emergency_skipped')).toMatchObject({
      policy: 'logs',
      reason: 'paused',
    });
    await watch.stop();
  });

  it('a failed check is logged and alerted, and the next interval checks again', async () => {
    const { errors, watch, time, reports, lines } = setUp({ failingChecks: 1 });
    watch.start();
    await watch.idle();
    expect(errors).toEqual(['disk_check']);
    expect(lines.find((line) => line.event === 'error')).toMatchObject({
      stage: 'disk_check',
      error: expect.stringContaining('EACCES'),
    });
    expect(reports).toEqual([]);
    await time.advanceTo('2024-06-01T00:05:00.000Z');
    await watch.idle();
    expect(reports).toMatchObject([{ stopReason: 'disk_ok' }]);
    await watch.stop();
  });

  it('a root that cannot be looked at is `unknown` (alerted), not a failed check', async () => {
    const { disk, errors, watch, reports, lines } = setUp();
    disk.broken.add('/srv/data/logs');
    watch.start();
    await watch.idle();
    expect(watch.lastReport()?.filesystems[0]).toMatchObject({ id: 'unknown:/srv/data/logs', level: 'unknown' });
    expect(lines.filter((line) => line.event === 'disk_alert')).toMatchObject([
      { disk_level: 'unknown', level: 'warn' },
    ]);
    expect(reports).toEqual([]);
    expect(errors).toEqual([]);
    await watch.stop();
  });
});
