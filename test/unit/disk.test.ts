import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { checkFsRoots } from '../../lib/config/roots.ts';
import { alertDue, diskLevel } from '../../lib/disk/levels.ts';
import { checkDisks, type DiskAlert, operationalAlert } from '../../lib/disk/monitor.ts';
import { statfsProbe, usageOf } from '../../lib/disk/probe.ts';
import { surveyDisks } from '../../lib/disk/survey.ts';
import { ConfigError } from '../../lib/errors.ts';
import { Logger } from '../../lib/observe/log.ts';
import { SettableClock } from '../support/fakeClock.ts';
import { FakeDisk } from '../support/fakeDisk.ts';

/** The disk monitor: thresholds through an injected probe, cooldowns under a fake clock, statfs for real once. */
const HOUR = 3_600_000;
const T0 = new Date('2026-01-01T00:00:00Z');

const fsPolicy = (name: string, root: string, extra: Record<string, unknown> = {}) => ({
  name,
  class: 'blobs',
  store: { kind: 'fs', root },
  retention: '30d',
  schedule: '0 * * * *',
  ...extra,
});

function configWith(disk: Record<string, unknown> = {}) {
  return parseConfig({
    disk,
    policies: [
      fsPolicy('logs', '/srv/data/logs'),
      fsPolicy('tmp', '/srv/data/tmp'),
      fsPolicy('cache', '/var/cache/app'),
    ],
  });
}

describe('disk levels and cooldowns (pure)', () => {
  it('levels at the thresholds: at the line counts as over it', () => {
    const thresholds = { warning: 80, critical: 90 };
    expect([79.9, 80, 89.9, 90, 100].map((used) => diskLevel(used, thresholds))).toEqual([
      'ok',
      'warning',
      'warning',
      'critical',
      'critical',
    ]);
  });

  it('a warning waits out its cooldown; critical alerts always go; ok never alerts', () => {
    const cooldown = 6 * HOUR;
    const sent = T0;
    const at = (ms: number) => new Date(T0.getTime() + ms);
    expect(alertDue('warning', undefined, at(0), cooldown)).toBe(true);
    expect(alertDue('warning', sent, at(6 * HOUR - 1), cooldown)).toBe(false);
    expect(alertDue('warning', sent, at(6 * HOUR), cooldown)).toBe(true);
    expect(alertDue('critical', sent, at(1), cooldown)).toBe(true);
    expect(alertDue('unknown', sent, at(HOUR), cooldown)).toBe(false);
    expect(alertDue('ok', undefined, at(0), cooldown)).toBe(false);
  });

  it('statfs numbers as df reads them: reserved blocks are neither used nor available', () => {
    // 1000 blocks of 4 KiB: 100 free, of which 50 reserved for root (bavail 50).
    expect(usageOf({ bsize: 4096, blocks: 1000, bfree: 100, bavail: 50 })).toEqual({
      total: 4_096_000,
      free: 409_600,
      avail: 204_800,
      usedPercent: 94.7,
    });
    expect(usageOf({ bsize: 4096, blocks: 0, bfree: 0, bavail: 0 }).usedPercent).toBe(0);
  });
});

describe('disk survey and alerts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'disk-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function monitor(disk: FakeDisk, config = configWith()) {
    const clock = new SettableClock(T0);
    const lines: Array<Record<string, unknown>> = [];
    const sent: DiskAlert[] = [];
    const log = new Logger({ sink: { write: (line) => void lines.push(JSON.parse(line)) }, level: 'info', clock });
    const alertFile = path.join(dir, `${Math.random().toString(16).slice(2)}.json`);
    const check = () =>
      checkDisks(config.policies, config.disk, {
        probe: disk,
        clock,
        log,
        alertFile,
        sendAlert: (alert) => sent.push(alert),
      });
    return { clock, lines, sent, alertFile, check };
  }

  function twoDisks(): FakeDisk {
    const disk = new FakeDisk();
    disk.mount('/srv/data', 'ext4:1', 50);
    disk.mount('/var', 'ext4:2', 50);
    return disk;
  }

  it('groups policies by file system and measures each once', async () => {
    const disk = twoDisks();
    disk.setUsed('/srv/data', 85);
    const config = configWith();
    expect(await surveyDisks(config.policies, config.disk, disk)).toEqual([
      expect.objectContaining({
        id: 'ext4:1',
        roots: ['/srv/data/logs', '/srv/data/tmp'],
        policies: ['logs', 'tmp'],
        level: 'warning',
        usedPercent: 85,
      }),
      expect.objectContaining({ id: 'ext4:2', policies: ['cache'], level: 'ok', usedPercent: 50 }),
    ]);
    disk.broken.add('/var/cache/app');
    expect((await surveyDisks(config.policies, config.disk, disk))[1]).toMatchObject({
      id: 'unknown:/var/cache/app',
      level: 'unknown',
      error: expect.stringContaining('ENOENT'),
    });
  });

  it('a warning alerts once per cooldown (persisted in the alert file); critical bypasses it', async () => {
    const disk = twoDisks();
    const { clock, lines, sent, alertFile, check } = monitor(disk);
    expect((await check()).alerts).toEqual([]);

    disk.setUsed('/srv/data', 82);
    expect((await check()).alerts).toMatchObject([{ level: 'warning', filesystem: 'ext4:1', usedPercent: 82 }]);
    clock.advance(6 * HOUR - 60_000);
    expect((await check()).alerts).toEqual([]);
    clock.advance(60_000);
    expect((await check()).alerts).toHaveLength(1);

    disk.setUsed('/srv/data', 91);
    clock.advance(60_000);
    expect((await check()).alerts).toMatchObject([{ level: 'critical' }]);
    clock.advance(60_000);
    expect((await check()).alerts).toMatchObject([{ level: 'critical' }]);

    // Each alert went to the log (warn, error) and the sink, and the file has the latest check.
    expect(sent.map((alert) => alert.level)).toEqual(['warning', 'warning', 'critical', 'critical']);
    expect(lines.filter((line) => line.event === 'disk_alert').map((line) => line.level)).toEqual([
      'warn',
      'warn',
      'error',
      'error',
    ]);
    expect(sent[2]!.message).toBe(
      'disk critical: 91% used on the file system of /srv/data/logs, /srv/data/tmp (policies logs, tmp); warning at 80%, critical at 90%',
    );
    const file = JSON.parse(await readFile(alertFile, 'utf8'));
    expect(file).toMatchObject({ warning: 80, critical: 90, filesystems: [{ level: 'critical' }, { level: 'ok' }] });
    expect(file.recentAlerts).toHaveLength(4);
  });

  it('a file system back under its warning line says so once, and its next breach alerts at once', async () => {
    const disk = twoDisks();
    const { clock, lines, sent, check } = monitor(disk);
    disk.setUsed('/srv/data', 92);
    expect((await check()).alerts).toMatchObject([{ level: 'critical' }]);
    disk.setUsed('/srv/data', 84);
    clock.advance(60_000);
    expect((await check()).alerts).toMatchObject([{ level: 'warning' }]);

    disk.setUsed('/srv/data', 70);
    clock.advance(60_000);
    const recovered = (await check()).alerts;
    expect(recovered).toMatchObject([{ level: 'recovered', was: 'warning', filesystem: 'ext4:1', usedPercent: 70 }]);
    expect(recovered[0]!.message).toBe(
      'disk recovered: 70% used on the file system of /srv/data/logs, /srv/data/tmp (policies logs, tmp), ' +
        'back under the warning line 80% (was warning)',
    );
    expect(operationalAlert(recovered[0]!)).toMatchObject({
      level: 'info',
      fingerprint: ['disk', 'ext4:1', 'recovered'],
    });
    expect(lines.filter((line) => line.event === 'disk_recovered')).toMatchObject([{ level: 'info', was: 'warning' }]);
    // Once: the next check of a healthy disk is quiet.
    clock.advance(60_000);
    expect((await check()).alerts).toEqual([]);

    // A new warning within the old warning's cooldown (6 h) alerts: it is a new breach.
    disk.setUsed('/srv/data', 81);
    clock.advance(60_000);
    expect((await check()).alerts).toMatchObject([{ level: 'warning', usedPercent: 81 }]);
    expect(sent.map((alert) => alert.level)).toEqual(['critical', 'warning', 'recovered', 'warning']);
  });

  it('the cooldown is read back from the file (a restarted daemon does not re-alert), and an unreadable file starts over', async () => {
    const disk = twoDisks();
    disk.setUsed('/var', 80);
    const first = monitor(disk, configWith({ cooldown: '1h' }));
    expect((await first.check()).alerts).toHaveLength(1);
    const again = () =>
      checkDisks(configWith({ cooldown: '1h' }).policies, configWith({ cooldown: '1h' }).disk, {
        probe: disk,
        clock: first.clock,
        log: new Logger({ sink: { write: () => undefined }, level: 'info', clock: first.clock }),
        alertFile: first.alertFile,
      });
    first.clock.advance(30 * 60_000);
    expect((await again()).alerts).toEqual([]);
    await writeFile(first.alertFile, '{ torn');
    expect((await again()).alerts).toHaveLength(1);
  });

  it('statfs for real: the temporary directory is measured, consistently', async () => {
    const usage = await statfsProbe.usage(dir);
    expect(usage.total).toBeGreaterThan(0);
    expect(usage.avail).toBeLessThanOrEqual(usage.free);
    expect(usage.usedPercent).toBeGreaterThanOrEqual(0);
    expect(usage.usedPercent).toBeLessThanOrEqual(100);
    expect(await statfsProbe.filesystem(dir)).toBe(await statfsProbe.filesystem(path.join(dir, '.')));
    await expect(statfsProbe.usage(path.join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});

describe('disk config', () => {
  const fails = (document: unknown) => {
    try {
      parseConfig(document);
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    throw new Error('parsed');
  };
  const policies = [fsPolicy('logs', '/srv/data/logs')];

  it('no fs root may contain the alert file (the tool never lists its own state)', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'disk-root-'));
    try {
      const config = parseConfig({
        policies: [fsPolicy('logs', root)],
        disk: { alertFile: path.join(root, 'a.json') },
      });
      await expect(checkFsRoots(config, {})).rejects.toThrow(
        `policies[0].store.root: ${root} contains disk.alertFile ${path.join(root, 'a.json')}`,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('defaults 80/90, 6h cooldown, 5m interval', () => {
    expect(parseConfig({ policies }).disk).toEqual({ warning: 80, critical: 90, cooldown: '6h', interval: '5m' });
  });

  it('names the field of a bad threshold, cooldown, alert file or emergency rule', () => {
    expect(fails({ policies, disk: { warning: 95 } })).toContain('disk.warning: warning 95 is not below critical 90');
    expect(fails({ policies, disk: { critical: 120 } })).toContain('disk.critical: must be at most 100');
    expect(fails({ policies, disk: { cooldown: '6' } })).toContain('disk.cooldown');
    expect(fails({ policies, disk: { alertFile: 'alerts.json' } })).toContain(
      'disk.alertFile: alerts.json is not absolute',
    );
    expect(fails({ policies: [fsPolicy('logs', '/srv/data/logs', { emergency: { maxDeletes: 5 } })] })).toContain(
      'policies[0].emergency: says neither what to keep nor for how long (add keepNewest',
    );
    expect(fails({ policies: [fsPolicy('logs', '/srv/data/logs', { emergency: { keepNewest: 0 } })] })).toContain(
      'policies[0].emergency.keepNewest',
    );
    expect(fails({ policies: [fsPolicy('logs', '/srv/data/logs', { emergency: { retention: '10m' } })] })).toContain(
      'policies[0].emergency.retention: retention 10m is under 1h',
    );
  });
});
