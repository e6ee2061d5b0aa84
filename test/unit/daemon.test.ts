import { describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../lib/config/schema.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { missedTick } from '../../lib/daemon/due.ts';
import { Scheduler } from '../../lib/daemon/scheduler.ts';
import { monitorRun } from '../../lib/observe/sentry.ts';
import {
  FakeControl,
  FakeMonitor,
  FakeRuns,
  FakeTime,
  policies,
  recordingLogger,
  settle,
} from '../support/daemonFakes.ts';

/** One daemon under a fake clock; several share `time` and `control` to stand for several machines. */
function daemon(
  configured: PolicyConfig[],
  options: { time: FakeTime; control?: FakeControl; concurrency?: number; owner?: string },
) {
  const { time } = options;
  const control = options.control ?? new FakeControl(time);
  const runs = new FakeRuns(time, control);
  const monitor = new FakeMonitor();
  const { log, events } = recordingLogger(time);
  const scheduler = new Scheduler(
    {
      policies: configured,
      concurrency: options.concurrency ?? 2,
      leaseTtlMs: 60_000,
      owner: options.owner ?? 'daemon:a',
      retryMs: 15_000,
    },
    { control: control.control, clock: time, timer: time, log, monitor, run: runs.run },
  );
  return { scheduler, control, runs, monitor, events };
}

describe('daemon scheduler (fake clock)', () => {
  it('runs each policy at the minutes of its schedule (UTC), and not at start', async () => {
    const time = new FakeTime('2025-01-01T01:50:00Z');
    const d = daemon(
      policies({ name: 'quarterly', schedule: '*/15 * * * *' }, { name: 'nightly', schedule: '0 2 * * *' }),
      { time },
    );
    d.runs.autoEnd = true;
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T02:59:00Z');
    expect(d.runs.startsOf('quarterly')).toEqual(['02:00', '02:15', '02:30', '02:45']);
    expect(d.runs.startsOf('nightly')).toEqual(['02:00']);
    expect(d.runs.started.map((run) => run.startedAt.getUTCSeconds())).toEqual(d.runs.started.map(() => 0));
    expect(d.events('run_scheduled').map((line) => [line.policy, line.tick])).toContainEqual([
      'nightly',
      '2025-01-01T02:00:00.000Z',
    ]);
  });

  it('catches up a run missed while it was down once, not once per missed tick; a policy that never ran waits', async () => {
    const time = new FakeTime('2025-01-01T01:50:30Z');
    const d = daemon(
      policies(
        { name: 'missed', schedule: '*/15 * * * *' },
        { name: 'on-time', schedule: '*/15 * * * *' },
        { name: 'new', schedule: '*/15 * * * *' },
      ),
      { time },
    );
    // Down since 00:05: the ticks 00:15 … 01:45 of `missed` were not run. `on-time` ran at 01:45.
    d.control.record({ runId: 'old', policy: 'missed', startedAt: new Date('2025-01-01T00:00:00Z') });
    d.control.record({ runId: 'recent', policy: 'on-time', startedAt: new Date('2025-01-01T01:45:00Z') });
    // A dry run since, or a run that found the lease taken, is not the scheduled run.
    d.control.record({ runId: 'dry', policy: 'missed', startedAt: new Date('2025-01-01T01:46:00Z'), dryRun: true });
    d.control.record({
      runId: 'locked',
      policy: 'missed',
      startedAt: new Date('2025-01-01T01:47:00Z'),
      status: 'skipped_locked',
    });
    d.runs.autoEnd = true;
    await d.scheduler.start();
    await settle();
    expect(d.runs.startsOf()).toEqual(['01:50']);
    expect(d.runs.started[0]!.policy).toBe('missed');
    expect(d.events('run_scheduled')).toEqual([
      expect.objectContaining({ policy: 'missed', catch_up: true, tick: '2025-01-01T01:45:00.000Z' }),
    ]);

    await time.advanceTo('2025-01-01T02:10:00Z');
    expect(d.runs.startsOf('missed')).toEqual(['01:50', '02:00']);
    expect(d.runs.startsOf('on-time')).toEqual(['02:00']);
    expect(d.runs.startsOf('new')).toEqual(['02:00']);
  });

  it('runs at most `concurrency` policies at once; the others wait for a free slot', async () => {
    const time = new FakeTime('2025-01-01T00:59:00Z');
    const d = daemon(policies(...['a', 'b', 'c', 'd'].map((name) => ({ name, schedule: '0 * * * *' }))), {
      time,
      concurrency: 2,
    });
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T01:00:00Z');
    expect(d.runs.running().map((run) => run.policy)).toEqual(['a', 'b']);
    expect(
      d.scheduler
        .nextRuns()
        .filter((next) => next.state === 'due')
        .map((next) => next.policy),
    ).toEqual(['c', 'd']);

    await time.advanceTo('2025-01-01T01:03:00Z');
    d.runs.running()[0]!.end();
    await settle();
    expect(d.runs.running().map((run) => run.policy)).toEqual(['b', 'c']);
    for (const run of d.runs.running()) run.end();
    await settle();
    for (const run of d.runs.running()) run.end();
    await settle();
    expect(d.runs.startsOf()).toEqual(['01:00', '01:00', '01:03', '01:03']);
    expect(d.runs.maxInFlight).toBe(2);
  });

  it('never overlaps a policy with itself: ticks that pass during its run become one run after it', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(policies({ name: 'slow', schedule: '* * * * *' }), { time, concurrency: 4 });
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T00:03:30Z');
    expect(d.runs.startsOf()).toEqual(['00:01']);
    expect(d.scheduler.runsInFlight()).toEqual([
      expect.objectContaining({ policy: 'slow', tick: new Date('2025-01-01T00:01:00Z') }),
    ]);
    expect(d.scheduler.nextRuns()).toEqual([
      expect.objectContaining({ state: 'due', tick: new Date('2025-01-01T00:03:00Z') }),
    ]);

    d.runs.running()[0]!.end();
    await settle();
    expect(d.runs.startsOf()).toEqual(['00:01', '00:03']);
    expect(d.runs.maxInFlight).toBe(1);
  });

  it('never runs a disabled policy, even one with a missed tick', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(
      policies({ name: 'off', schedule: '* * * * *', enabled: false }, { name: 'on', schedule: '0 0 1 1 *' }),
      { time },
    );
    d.control.record({ runId: 'old', policy: 'off', startedAt: new Date('2024-12-01T00:00:00Z') });
    d.runs.autoEnd = true;
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T00:10:00Z');
    expect(d.runs.started).toEqual([]);
    expect(d.scheduler.nextRuns().map((next) => next.policy)).toEqual(['on']);
    expect(d.events('daemon_started')[0]).toMatchObject({ policies: ['on'], disabled: ['off'] });
  });

  it('two daemons on one control store: each tick runs once, the other daemon waits for the lease and stands down', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const control = new FakeControl(time);
    const configured = policies({ name: 'shared', schedule: '*/5 * * * *' });
    // Missed since yesterday: both daemons want to catch up at start.
    control.record({ runId: 'yesterday', policy: 'shared', startedAt: new Date('2024-12-31T00:00:00Z') });
    const [a, b] = [
      daemon(configured, { time, control, owner: 'daemon:a' }),
      daemon(configured, { time, control, owner: 'daemon:b' }),
    ];
    await Promise.all([a.scheduler.start(), b.scheduler.start()]);
    await settle();
    // a's catch-up run is in flight; b found the lease taken and waits.
    expect([a.runs.started.length, b.runs.started.length]).toEqual([1, 0]);
    expect(b.events('run_waiting')).toEqual([expect.objectContaining({ reason: 'locked', lease_owner: 'daemon:a' })]);
    await time.advanceTo('2025-01-01T00:01:00Z');
    a.runs.running()[0]!.end();
    await time.advanceTo('2025-01-01T00:01:30Z');
    expect(b.events('run_skipped')).toEqual([
      expect.objectContaining({ reason: 'already_ran', run_id: a.runs.started[0]!.runId }),
    ]);

    // Later ticks, runs ending at once: whichever daemon gets there first runs, the other stands down.
    a.runs.autoEnd = true;
    b.runs.autoEnd = true;
    await time.advanceTo('2025-01-01T00:31:00Z');
    const live = control.runs.filter((run) => run.runId !== 'yesterday');
    const ticks = live.map((run) => run.startedAt.toISOString().slice(11, 16));
    expect(ticks).toEqual(['00:00', '00:05', '00:10', '00:15', '00:20', '00:25', '00:30']);
    expect(live.every((run) => run.status === 'completed')).toBe(true);
    expect(a.monitor.checkIns.length + b.monitor.checkIns.length).toBe(2 * live.length);
    expect(control.liveLease('shared')).toBeNull();
  });

  it('hands its lease to the run: the run holds the very lease the daemon took, and releases it', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(policies({ name: 'p', schedule: '* * * * *' }), { time, owner: 'daemon:host:1' });
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T00:01:00Z');
    const [run] = d.runs.running();
    expect(run!.lease).toMatchObject({ owner: 'daemon:host:1', token: d.control.liveLease('p')!.token });
    run!.end();
    await settle();
    expect(d.control.liveLease('p')).toBeNull();
  });

  it('stop: no new runs, the runs in flight are signalled and awaited, waiting runs never start', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(policies(...['a', 'b', 'c'].map((name) => ({ name, schedule: '* * * * *' }))), {
      time,
      concurrency: 2,
    });
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T00:01:00Z');
    const inFlight = d.runs.running();
    let stopped = false;
    const stopping = d.scheduler.stop('SIGTERM').then(() => (stopped = true));
    await settle();
    expect(inFlight.map((run) => run.signal.aborted)).toEqual([true, true]);
    expect(stopped).toBe(false);
    for (const run of inFlight) run.end();
    await stopping;
    expect(d.control.runs.map((run) => [run.policy, run.status])).toEqual([
      ['a', 'partial'],
      ['b', 'partial'],
    ]);
    await time.advanceTo('2025-01-01T00:05:00Z');
    expect(d.runs.started).toHaveLength(2);
    expect(d.events('daemon_stopping')[0]).toMatchObject({ runs_in_flight: ['a', 'b'], not_started: ['c'] });
    expect(['a', 'b', 'c'].map((name) => d.control.liveLease(name))).toEqual([null, null, null]);
  });

  it('checks in with Sentry around each run and reports its SLA; a failing run alerts and the next tick runs again', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(policies({ name: 'p', schedule: '* * * * *' }), { time });
    d.runs.autoEnd = true;
    await d.scheduler.start();
    await time.advanceTo('2025-01-01T00:01:00Z');
    expect(d.monitor.checkIns).toEqual([
      { policy: 'p', status: 'in_progress' },
      { policy: 'p', status: 'ok' },
    ]);
    expect(d.monitor.slaReports).toEqual([d.runs.started[0]!.runId]);

    d.runs.throwing = new Error('root /data/p does not exist');
    await time.advanceTo('2025-01-01T00:02:00Z');
    expect(d.monitor.checkIns.slice(2).map((checkIn) => checkIn.status)).toEqual(['in_progress', 'error']);
    expect(d.monitor.errors).toEqual(['run: root /data/p does not exist']);
    expect(d.control.liveLease('p')).toBeNull();
    d.runs.throwing = null;
    await time.advanceTo('2025-01-01T00:03:00Z');
    expect(d.runs.startsOf()).toEqual(['00:01', '00:03']);
  });

  it('a control store outage at a tick is retried, not lost', async () => {
    const time = new FakeTime('2025-01-01T00:00:30Z');
    const d = daemon(policies({ name: 'hourly', schedule: '0 * * * *' }), { time });
    d.runs.autoEnd = true;
    await d.scheduler.start();
    d.control.failing = true;
    await time.advanceTo('2025-01-01T01:00:00Z');
    expect(d.events('error')).toEqual([
      expect.objectContaining({ stage: 'schedule', error: expect.stringContaining('unreachable') }),
    ]);
    expect(d.scheduler.nextRuns()[0]).toMatchObject({ state: 'retrying', at: new Date('2025-01-01T01:00:15Z') });
    d.control.failing = false;
    await time.advanceTo('2025-01-01T01:00:20Z');
    expect(d.runs.started.map((run) => run.startedAt.toISOString())).toEqual(['2025-01-01T01:00:15.000Z']);
  });
});

describe('missedTick (catch-up from history)', () => {
  const now = new Date('2025-01-01T02:10:00Z');
  it.each([
    ['the latest run began before the last tick', '2025-01-01T01:00:00Z', '0 2 * * *', '2025-01-01T02:00:00.000Z'],
    ['many ticks missed: the last one, once', '2024-12-01T02:00:00Z', '*/5 * * * *', '2025-01-01T02:10:00.000Z'],
    ['the latest run began at the tick', '2025-01-01T02:00:00Z', '0 2 * * *', null],
    ['the latest run began after the tick', '2025-01-01T02:03:00Z', '0 2 * * *', null],
    ['the policy never ran', null, '0 2 * * *', null],
  ])('%s', (_, latest, schedule, expected) => {
    expect(missedTick(schedule, now, latest ? new Date(latest) : null)?.toISOString() ?? null).toBe(expected);
  });
});

describe('monitorRun (shared by the Lambda handler and the daemon)', () => {
  const [policy] = policies({ name: 'p', schedule: '* * * * *' });
  const report = {
    runId: 'r1',
    policy: 'p',
    status: 'aborted_limit',
    dryRun: false,
    sla: { status: 'ok', reasons: [] },
  } as unknown as RunReport;

  type Case = [string, boolean, RunReport | undefined, string[], string[]];
  it.each<Case>([
    ['a live run: check-in by its outcome, SLA reported', false, report, ['in_progress', 'error'], ['r1']],
    ['a dry run: no check-in, no SLA alert', true, report, [], []],
    ['a run that never began (stopping): closed ok, nothing reported', false, undefined, ['in_progress', 'ok'], []],
  ])('%s', async (_, dryRun, outcome, checkIns, slaReports) => {
    const monitor = new FakeMonitor();
    await monitorRun(monitor, policy!, { dryRun }, async () => outcome);
    expect(monitor.checkIns.map((checkIn) => checkIn.status)).toEqual(checkIns);
    expect(monitor.slaReports).toEqual(slaReports);
  });

  it('a run that throws: check-in error, the error captured and rethrown', async () => {
    const monitor = new FakeMonitor();
    await expect(
      monitorRun(monitor, policy!, { dryRun: false }, () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(monitor.checkIns.map((checkIn) => checkIn.status)).toEqual(['in_progress', 'error']);
    expect(monitor.errors).toEqual(['run: boom']);
  });
});
