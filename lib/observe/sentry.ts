import { ServerRuntimeClient } from '@sentry/core/server';
import * as Sentry from '@sentry/node';
import type { PolicyConfig } from '../config/schema.ts';
import { durationMs } from '../core/durations.ts';
import type { Clock, RunReport, SlaStatus } from '../core/types.ts';
import { reasonKey } from '../policy/sla.ts';
import { redact } from '../redact.ts';

/**
 * Alerting through Sentry. Every run of a policy is a cron check-in on the monitor named after the
 * policy, so a run that never starts (missed) or never ends (timed out) alerts on Sentry's side even
 * when nothing of ours is left running to say so. SLA findings become events grouped per policy and
 * reason. Without a DSN every method is a no-op.
 */
export interface RunMonitor {
  /** Sends the `in_progress` check-in; `finish` sends `ok` / `error` with the duration. */
  checkIn(policy: PolicyConfig): CheckIn;
  /** One event per SLA reason: `warning` level for an SLA warning, `error` for a breach. */
  reportSla(report: RunReport): void;
  captureError(error: unknown, tags: CaptureTags): void;
  /** Waits until queued envelopes are sent (a Lambda may freeze right after returning). */
  flush(timeoutMs?: number): Promise<void>;
}

export interface CheckIn {
  finish(status: 'ok' | 'error'): void;
}

/** What `captureError` tags an event with (not lib/errors.ts's ErrorContext, which an error carries). */
export interface CaptureTags {
  policy?: PolicyConfig;
  /** Our run id when the run got that far; otherwise the platform's request id correlates. */
  runId?: string;
  requestId?: string;
  /** Which step failed, e.g. `cold_start`, `run`, `continue`. */
  stage: string;
}

export interface SentryOptions {
  dsn: string | undefined;
  environment?: string;
  release?: string;
  clock: Clock;
}

type MonitorConfig = NonNullable<Parameters<typeof Sentry.captureCheckIn>[1]>;

/** Minutes after the scheduled time before Sentry calls a check-in missed (EventBridge may lag). */
export const CHECKIN_MARGIN_MINUTES = 5;
const DEFAULT_FLUSH_MS = 2_000;

/** A run that failed, or refused to delete because of its limits, needs a human: the check-in errs. */
export function checkInStatus(report: RunReport): 'ok' | 'error' {
  return report.status === 'failed' || report.status === 'aborted_limit' ? 'error' : 'ok';
}

/**
 * One run under the monitor, the same in every runtime (Lambda handler, daemon): a check-in that
 * ends `ok` or `error`, SLA findings as events, a thrown error captured and rethrown. A dry run
 * answers an operator's question: it is not the scheduled job (no check-in that could mask a
 * missed run) and raises no SLA alert. `run` resolving to undefined means the run never began
 * because its runtime was stopping: an operator's stop is no alert, before the first batch as
 * after it (a run stopped by a signal ends `partial`, `ok`), and the daemon catches the run up.
 */
export async function monitorRun<R extends RunReport | undefined>(
  monitor: RunMonitor,
  policy: PolicyConfig,
  context: { dryRun: boolean; requestId?: string },
  run: () => Promise<R>,
): Promise<R> {
  const checkIn = context.dryRun ? null : monitor.checkIn(policy);
  try {
    const report = await run();
    checkIn?.finish(report ? checkInStatus(report) : 'ok');
    if (report && !context.dryRun) monitor.reportSla(report);
    return report;
  } catch (error) {
    checkIn?.finish('error');
    monitor.captureError(error, {
      policy,
      stage: 'run',
      ...(context.requestId ? { requestId: context.requestId } : {}),
    });
    throw error;
  }
}

/** The monitor's schedule as Sentry upserts it. Runs may overshoot their budget by one batch (invariant 4): one minute of slack. */
export function monitorConfig(policy: PolicyConfig): MonitorConfig {
  return {
    schedule: { type: 'crontab', value: policy.schedule },
    checkinMargin: CHECKIN_MARGIN_MINUTES,
    maxRuntime: Math.ceil(durationMs(policy.budget) / 60_000) + 1,
    timezone: 'Etc/UTC',
  };
}

export function createRunMonitor(options: SentryOptions): RunMonitor {
  if (!options.dsn) return disabledMonitor;
  // Sentry's server client with @sentry/node's transport (proxy settings, keep-alive) and stack
  // parser, bound by hand instead of `Sentry.init`: init and NodeClient bring the OpenTelemetry
  // auto-instrumentation (0.4 MB of a function's bundle, module hooks at cold start) only for us to
  // switch it off again. We send check-ins and events we build ourselves.
  const client = new ServerRuntimeClient({
    platform: 'node',
    runtime: { name: 'node', version: process.version },
    dsn: options.dsn,
    // Only what we send explicitly: no breadcrumbs of other libraries, no global handlers that
    // would race the handler's own capture, no tracing, no load-time module hooks (cold start).
    integrations: [],
    tracesSampleRate: 0,
    transport: Sentry.makeNodeTransport,
    stackParser: Sentry.defaultStackParser,
    // The run report is nested (sla.reasons, limits): keep it whole in the event.
    normalizeDepth: 6,
    // The last boundary before an event leaves: messages, exception values, tags and contexts.
    beforeSend: (event) => redact(event),
    ...(options.environment ? { environment: options.environment } : {}),
    ...(options.release ? { release: options.release } : {}),
  });
  Sentry.setCurrentClient(client);
  client.init();
  return new SentryRunMonitor(options.clock);
}

class SentryRunMonitor implements RunMonitor {
  constructor(private readonly clock: Clock) {}

  checkIn(policy: PolicyConfig): CheckIn {
    const startedAt = this.clock.now().getTime();
    const checkInId = Sentry.captureCheckIn({ monitorSlug: policy.name, status: 'in_progress' }, monitorConfig(policy));
    let finished = false;
    return {
      finish: (status) => {
        if (finished) return;
        finished = true;
        const duration = (this.clock.now().getTime() - startedAt) / 1000;
        Sentry.captureCheckIn({ monitorSlug: policy.name, status, checkInId, duration }, monitorConfig(policy));
      },
    };
  }

  reportSla(report: RunReport): void {
    if (report.sla.status === 'ok') return;
    const level = SLA_LEVEL[report.sla.status];
    const { items: _omitted, ...context } = report;
    for (const reason of report.sla.reasons) {
      Sentry.withScope((scope) => {
        scope.setLevel(level);
        scope.setFingerprint([report.policy, reasonKey(reason)]);
        scope.setTags(runTags(report));
        scope.setContext('run_report', context);
        const detail =
          reasonKey(reason) === 'run_failed' && report.error ? ` (${report.error.code}: ${report.error.message})` : '';
        Sentry.captureMessage(`${report.policy}: SLA ${report.sla.status}: ${reason}${detail}`);
      });
    }
  }

  captureError(error: unknown, tags: CaptureTags): void {
    Sentry.withScope((scope) => {
      scope.setTag('stage', tags.stage);
      if (tags.policy)
        scope.setTags({ policy: tags.policy.name, data_class: tags.policy.class, store: tags.policy.store.kind });
      if (tags.runId) scope.setTag('run_id', tags.runId);
      if (tags.requestId) scope.setTag('request_id', tags.requestId);
      Sentry.captureException(error);
    });
  }

  async flush(timeoutMs = DEFAULT_FLUSH_MS): Promise<void> {
    await Sentry.flush(timeoutMs);
  }
}

// An SLA warning alerts less loudly than a breach; reasons carry no level of their own, so every
// reason of a run takes the run's SLA status.
const SLA_LEVEL: Record<Exclude<SlaStatus, 'ok'>, Sentry.SeverityLevel> = { warning: 'warning', breach: 'error' };

function runTags(report: RunReport): Record<string, string> {
  return {
    policy: report.policy,
    data_class: report.dataClass,
    store: report.store,
    status: report.status,
    sla_status: report.sla.status,
    trigger: report.trigger,
    run_id: report.runId,
  };
}

/** An alert that is no run's (a disk filling up): one Sentry event, grouped by its fingerprint. */
export interface OperationalAlert {
  message: string;
  level: 'info' | 'warning' | 'error';
  fingerprint: string[];
  tags: Record<string, string>;
  context: Record<string, unknown>;
}

/** Sent through the client `createRunMonitor` set up; without a DSN (no client) nothing is sent. */
export function captureAlert(alert: OperationalAlert): void {
  Sentry.withScope((scope) => {
    scope.setLevel(alert.level);
    scope.setFingerprint(alert.fingerprint);
    scope.setTags(alert.tags);
    scope.setContext('alert', alert.context);
    Sentry.captureMessage(alert.message);
  });
}

const disabledMonitor: RunMonitor = {
  checkIn: () => ({ finish: () => undefined }),
  reportSla: () => undefined,
  captureError: () => undefined,
  flush: async () => undefined,
};
