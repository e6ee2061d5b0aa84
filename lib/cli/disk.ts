import path from 'node:path';
import type { RetentionConfig } from '../config/schema.ts';
import { retentionHome } from '../control/local/embedded.ts';
import { systemClock } from '../core/types.ts';
import { checkDisks, type DiskAlert, type DiskReport, operationalAlert } from '../disk/monitor.ts';
import { statfsProbe } from '../disk/probe.ts';
import type { CliIO } from './context.ts';
import { cliLogger, loadCliConfig } from './context.ts';
import { bytes, table } from './format.ts';

/**
 * `retention disk`: the file systems fs policies live on, each with its policies, percent used
 * and level; alerts what is due (as the daemon does, sharing its cooldowns through the alert
 * file). Needs no control store. Exit 0 when every file system is under its warning line, 1 when
 * one is at or over it (or cannot be measured), 6 when one is at or over its critical line.
 */
export const DISK_EXIT = { ok: 0, warning: 1, critical: 6 } as const;

/** Where the alert file goes unless `disk.alertFile` says: next to the embedded control store. */
export function alertFileOf(config: RetentionConfig, io: Pick<CliIO, 'env' | 'cwd'>): string {
  return config.disk.alertFile ?? path.join(retentionHome(io.env, io.cwd), 'disk-alerts.json');
}

/** Alerts to Sentry when `SENTRY_DSN` is set; Sentry is loaded only then (a second of start-up). */
export async function sentryAlerts(
  env: NodeJS.ProcessEnv,
): Promise<{ send?: (alert: DiskAlert) => void; flush: () => Promise<void> }> {
  if (!env.SENTRY_DSN) return { flush: async () => undefined };
  const { captureAlert, createRunMonitor } = await import('../observe/sentry.ts');
  const monitor = createRunMonitor({
    dsn: env.SENTRY_DSN,
    clock: systemClock,
    ...(env.SENTRY_ENVIRONMENT ? { environment: env.SENTRY_ENVIRONMENT } : {}),
  });
  return { send: (alert) => captureAlert(operationalAlert(alert)), flush: () => monitor.flush() };
}

export async function diskCommand(
  io: CliIO,
  configFile: string | undefined,
  flags: { json?: boolean },
): Promise<number> {
  const { config } = await loadCliConfig(io, configFile);
  const sentry = await sentryAlerts(io.env);
  try {
    const report = await checkDisks(config.policies, config.disk, {
      probe: statfsProbe,
      clock: systemClock,
      log: cliLogger(io, systemClock),
      alertFile: alertFileOf(config, io),
      ...(sentry.send ? { sendAlert: sentry.send } : {}),
    });
    io.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatDiskReport(report));
    return diskExitCode(report);
  } finally {
    await sentry.flush();
  }
}

export function diskExitCode(report: DiskReport): number {
  const levels = new Set(report.filesystems.map((status) => status.level));
  if (levels.has('critical')) return DISK_EXIT.critical;
  return levels.has('warning') || levels.has('unknown') ? DISK_EXIT.warning : DISK_EXIT.ok;
}

function formatDiskReport(report: DiskReport): string {
  if (report.filesystems.length === 0) return 'no fs policies: no file system to watch\n';
  const rows = report.filesystems.map((status) => [
    status.id,
    status.usedPercent === undefined ? '-' : `${status.usedPercent.toFixed(1)}%`,
    status.availBytes === undefined ? '-' : bytes(status.availBytes),
    status.level,
    status.policies.join(', '),
    status.roots.join(', '),
  ]);
  const lines = [table(['file system', 'used', 'available', 'level', 'policies', 'roots'], rows)];
  lines.push(`warning at ${report.warning}%, critical at ${report.critical}%`);
  for (const status of report.filesystems) if (status.error) lines.push(`  ${status.id}: ${status.error}`);
  for (const alert of report.alerts) lines.push(`alert: ${alert.message}`);
  return `${lines.join('\n')}\n`;
}
