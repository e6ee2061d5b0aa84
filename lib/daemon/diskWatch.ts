import type { DiskSettings, PolicyConfig } from '../config/schema.ts';
import { durationMs } from '../core/durations.ts';
import type { RunReport } from '../core/types.ts';
import type { DiskReport } from '../disk/monitor.ts';
import type { DiskProbe } from '../disk/probe.ts';
import type { FilesystemStatus } from '../disk/survey.ts';
import type { EmergencyRun } from '../engine/options.ts';
import { describeCause } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { Timer, TimerHandle } from './timer.ts';

/** Runs one policy's emergency now (the CLI: `runPolicies` with `emergency`). */
export type EmergencyRunner = (policy: PolicyConfig, emergency: EmergencyRun) => Promise<RunReport | undefined>;

export interface DiskWatchDeps {
  log: Logger;
  timer: Timer;
  probe: DiskProbe;
  /** One check: measure, alert what is due, write the alert file (lib/disk `checkDisks`). */
  check: () => Promise<DiskReport>;
  runEmergency: EmergencyRunner;
  /** A paused policy (or everything paused) gets no emergency run: a pause is the operator's kill switch. */
  isPaused: (policy: string) => Promise<boolean>;
  captureError: (error: unknown, stage: string) => void;
}

/**
 * The daemon's disk monitor: a check every `disk.interval`, and on a file system at or over its
 * critical line, an emergency run of each enabled policy on it that has emergency rules, one
 * after another, oldest items first, each stopping once the disk is back under the warning line
 * (`disk_ok`). The runs take their policy's lease like any run: one already running (a scheduled
 * run) is `skipped_locked`, and the next check tries again. Checks never overlap.
 */
export class DiskWatch {
  private sleeping: TimerHandle | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;
  private latest: DiskReport | undefined;

  constructor(
    private readonly policies: PolicyConfig[],
    private readonly settings: DiskSettings,
    private readonly deps: DiskWatchDeps,
  ) {}

  /** The first check now, then one every interval after the previous one ended. */
  start(): void {
    this.checking = this.checkOnce();
  }

  /** Resolves once the check in flight (and the emergency runs it started) ended. */
  async idle(): Promise<void> {
    await this.checking;
  }

  /** No further checks; waits for the one in flight (its run stops after its batch: the daemon's signal). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sleeping !== undefined) this.deps.timer.clear(this.sleeping);
    await this.idle();
  }

  /** The latest check, for whoever serves alongside the daemon. */
  lastReport(): DiskReport | undefined {
    return this.latest;
  }

  private async checkOnce(): Promise<void> {
    try {
      this.latest = await this.deps.check();
      for (const status of this.latest.filesystems) {
        if (status.level === 'critical') await this.cleanUp(status);
      }
    } catch (error) {
      this.deps.log.error('error', { stage: 'disk_check', error: describeCause(error) });
      this.deps.captureError(error, 'disk_check');
    }
    if (this.stopped) return;
    this.sleeping = this.deps.timer.set(() => {
      this.sleeping = undefined;
      this.checking = this.checkOnce();
    }, durationMs(this.settings.interval));
  }

  /** Emergency runs on a critical file system until it is back under its warning line. */
  private async cleanUp(status: FilesystemStatus): Promise<void> {
    const { log } = this.deps;
    const root = status.roots[0]!;
    const candidates = this.policies.filter(
      (policy) => policy.enabled && policy.emergency && status.policies.includes(policy.name),
    );
    if (candidates.length === 0) {
      log.warn('disk_critical_no_emergency', {
        filesystem: status.id,
        used_percent: status.usedPercent,
        policies: status.policies,
        fix: 'add emergency rules to a policy on this file system, or free space by hand',
      });
      return;
    }
    const diskOk = async () => (await this.deps.probe.usage(root)).usedPercent < this.settings.warning;
    for (const policy of candidates) {
      if (this.stopped) return;
      const usedPercent = (await this.deps.probe.usage(root)).usedPercent;
      if (usedPercent < this.settings.warning) return;
      // Asked here, not left to the run: a run would record a skipped run in history at every check.
      if (await this.deps.isPaused(policy.name)) {
        log.warn('emergency_skipped', { policy: policy.name, reason: 'paused', used_percent: usedPercent });
        continue;
      }
      log.warn('emergency_started', { policy: policy.name, filesystem: status.id, used_percent: usedPercent });
      try {
        const report = await this.deps.runEmergency(policy, { reason: 'disk_critical', usedPercent, diskOk });
        log.info('emergency_finished', {
          policy: policy.name,
          run_id: report?.runId ?? null,
          status: report?.status ?? 'not_started',
          ...(report?.stopReason ? { stop_reason: report.stopReason } : {}),
          deleted: report?.deleted ?? 0,
          bytes_freed: report?.bytesFreed ?? 0,
        });
      } catch (error) {
        log.error('error', { stage: 'emergency', policy: policy.name, error: describeCause(error) });
        this.deps.captureError(error, 'emergency');
      }
    }
  }
}
