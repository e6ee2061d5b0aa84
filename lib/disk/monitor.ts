import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DiskSettings, PolicyConfig } from '../config/schema.ts';
import { durationMs } from '../core/durations.ts';
import type { Clock } from '../core/types.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { OperationalAlert } from '../observe/sentry.ts';
import { alertDue, alertKind, type DiskLevel } from './levels.ts';
import type { DiskProbe } from './probe.ts';
import { type FilesystemStatus, surveyDisks } from './survey.ts';

/**
 * One alert as it is logged, sent to Sentry and kept in the alert file. `recovered`: a file system
 * that had alerted is back under its warning line (sent once, so whoever was paged knows to stand down).
 */
export interface DiskAlert {
  at: string;
  filesystem: string;
  level: Exclude<DiskLevel, 'ok'> | 'recovered';
  /** For `recovered`: the level it came back from. */
  was?: Exclude<DiskLevel, 'ok'>;
  usedPercent?: number;
  roots: string[];
  policies: string[];
  message: string;
}

/** What one check found: every file system, and the alerts it sent (the others waited out their cooldown). */
export interface DiskReport {
  checkedAt: string;
  warning: number;
  critical: number;
  filesystems: FilesystemStatus[];
  alerts: DiskAlert[];
}

/**
 * The alert file: the latest check for dashboards, the recent alerts, and when each kind of
 * alert last went (the cooldown survives restarts and is shared by the daemon and `retention disk`).
 */
interface AlertFile extends Omit<DiskReport, 'alerts'> {
  recentAlerts: DiskAlert[];
  lastSent: Record<string, string>;
}

/** Alerts kept in the file, newest first. */
const RECENT_ALERTS = 100;

export interface DiskCheckDeps {
  probe: DiskProbe;
  clock: Clock;
  log: Logger;
  alertFile: string;
  /** Where alerts go besides the log and the file (Sentry in the daemon and the CLI). */
  sendAlert?: (alert: DiskAlert) => void;
}

/** Measures every file system, alerts what is due (cooldown per kind, critical always), writes the alert file. */
export async function checkDisks(
  policies: PolicyConfig[],
  settings: DiskSettings,
  deps: DiskCheckDeps,
): Promise<DiskReport> {
  const { log, clock } = deps;
  const filesystems = await surveyDisks(policies, settings, deps.probe);
  const now = clock.now();
  const state = await readAlertFile(deps.alertFile, log);
  const alerts: DiskAlert[] = [];
  for (const status of filesystems) {
    if (status.level === 'ok') {
      const was = state.levels.get(status.id);
      if (was === undefined || was === 'ok') continue;
      const alert = describeRecovery(status, was, settings, now);
      alerts.push(alert);
      // A new breach after this one alerts at once, not after the old breach's cooldown.
      for (const level of ['warning', 'critical', 'unknown'] as const)
        delete state.lastSent[alertKind(status.id, level)];
      log.info('disk_recovered', {
        filesystem: alert.filesystem,
        was,
        used_percent: alert.usedPercent,
        policies: alert.policies,
        message: alert.message,
      });
      deps.sendAlert?.(alert);
      continue;
    }
    const kind = alertKind(status.id, status.level);
    const last = state.lastSent[kind];
    if (!alertDue(status.level, last ? new Date(last) : undefined, now, durationMs(settings.cooldown))) continue;
    const alert = describeAlert(status, settings, now);
    alerts.push(alert);
    state.lastSent[kind] = alert.at;
    // `disk_level`: a log line's own `level` is its severity (error for critical, warn otherwise).
    const line = {
      filesystem: alert.filesystem,
      disk_level: alert.level,
      used_percent: alert.usedPercent,
      roots: alert.roots,
      policies: alert.policies,
      message: alert.message,
      ...(status.error ? { error: status.error } : {}),
    };
    if (status.level === 'critical') log.error('disk_alert', line);
    else log.warn('disk_alert', line);
    deps.sendAlert?.(alert);
  }
  const report: DiskReport = {
    checkedAt: now.toISOString(),
    warning: settings.warning,
    critical: settings.critical,
    filesystems,
    alerts,
  };
  const { alerts: _sent, ...latest } = report;
  await writeAlertFile(deps.alertFile, {
    ...latest,
    recentAlerts: [...alerts, ...state.recentAlerts].slice(0, RECENT_ALERTS),
    lastSent: state.lastSent,
  });
  return report;
}

/** A disk alert as a Sentry event: one issue per file system and level. */
export function operationalAlert(alert: DiskAlert): OperationalAlert {
  return {
    message: alert.message,
    level: alert.level === 'critical' ? 'error' : alert.level === 'recovered' ? 'info' : 'warning',
    fingerprint: ['disk', alert.filesystem, alert.level],
    tags: { alert: 'disk', disk_level: alert.level, filesystem: alert.filesystem },
    context: { ...alert },
  };
}

function describeAlert(status: FilesystemStatus, settings: DiskSettings, now: Date): DiskAlert {
  const level = status.level as DiskAlert['level'];
  const where = `the file system of ${status.roots.join(', ')} (policies ${status.policies.join(', ')})`;
  const message =
    level === 'unknown'
      ? `disk unknown: cannot measure ${where}: ${status.error}`
      : `disk ${level}: ${status.usedPercent}% used on ${where}; warning at ${settings.warning}%, critical at ${settings.critical}%`;
  return {
    at: now.toISOString(),
    filesystem: status.id,
    level,
    ...(status.usedPercent !== undefined ? { usedPercent: status.usedPercent } : {}),
    roots: status.roots,
    policies: status.policies,
    message,
  };
}

function describeRecovery(
  status: FilesystemStatus,
  was: Exclude<DiskLevel, 'ok'>,
  settings: DiskSettings,
  now: Date,
): DiskAlert {
  return {
    at: now.toISOString(),
    filesystem: status.id,
    level: 'recovered',
    was,
    ...(status.usedPercent !== undefined ? { usedPercent: status.usedPercent } : {}),
    roots: status.roots,
    policies: status.policies,
    message:
      `disk recovered: ${status.usedPercent}% used on the file system of ${status.roots.join(', ')} ` +
      `(policies ${status.policies.join(', ')}), back under the warning line ${settings.warning}% (was ${was})`,
  };
}

/** What the previous check left: recent alerts, cooldowns, and each file system's level then. */
interface PreviousChecks extends Pick<AlertFile, 'recentAlerts' | 'lastSent'> {
  levels: Map<string, DiskLevel>;
}

async function readAlertFile(file: string, log: Logger): Promise<PreviousChecks> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { recentAlerts: [], lastSent: {}, levels: new Map() };
  }
  try {
    const parsed = JSON.parse(text) as Partial<AlertFile>;
    return {
      recentAlerts: parsed.recentAlerts ?? [],
      lastSent: parsed.lastSent ?? {},
      levels: new Map((parsed.filesystems ?? []).map((status) => [status.id, status.level])),
    };
  } catch (error) {
    // A torn or hand-edited file: start over (at worst one alert comes before its cooldown ended).
    log.warn('disk_alert_file_unreadable', { file, error: describeCause(error) });
    return { recentAlerts: [], lastSent: {}, levels: new Map() };
  }
}

/** Written whole and renamed into place: a dashboard never reads half a file. */
async function writeAlertFile(file: string, content: AlertFile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  await writeFile(partial, `${JSON.stringify(content, null, 2)}\n`);
  await rename(partial, file);
}
