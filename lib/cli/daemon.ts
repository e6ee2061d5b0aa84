import os from 'node:os';
import type { Clock } from '../core/types.ts';
import { DiskWatch } from '../daemon/diskWatch.ts';
import { DEFAULT_CONCURRENCY, Scheduler } from '../daemon/scheduler.ts';
import { systemTimer } from '../daemon/timer.ts';
import { checkDisks, operationalAlert } from '../disk/monitor.ts';
import { statfsProbe } from '../disk/probe.ts';
import { fsRootsOf } from '../disk/survey.ts';
import { Logger, levelFromEnv } from '../observe/log.ts';
import { captureAlert, createRunMonitor } from '../observe/sentry.ts';
import { type CliIO, type Session, withSession } from './context.ts';
import { alertFileOf } from './disk.ts';
import { parsePositiveInt } from './flags.ts';
import { runPolicies } from './run.ts';
import { parseServeFlags, type ServeOptions, startServing } from './serve.ts';

/**
 * `retention daemon`: the scheduler (lib/daemon) on the CLI's session: the same config, control
 * store (embedded PostgreSQL by default) and run path (`runPolicies`) as `retention run`, with
 * Sentry from `SENTRY_DSN` as in Lambda. Runs until `stop` is aborted (SIGTERM/SIGINT, see
 * main.ts), then lets the runs in flight end after their batch and exits 0.
 */
export interface DaemonFlags {
  concurrency?: string;
  /** Serve the REST API and dashboard too (as `retention serve`), on this port. */
  port?: string;
  host?: string;
}

/** Lease TTL of the daemon's runs unless `RETENTION_LEASE_TTL` says otherwise (the engine's default). */
const LEASE_TTL_MS = 60_000;

/** A scheduled run: live, within the policy's budget, no overrides. */
const SCHEDULED = { trigger: 'scheduled', dryRun: false, force: false, list: false } as const;

/** Checked before the config is loaded: a bad flag is exit 2 with nothing started. */
export function parseDaemonFlags(
  flags: DaemonFlags,
  env: NodeJS.ProcessEnv,
): { concurrency: number; serve: ServeOptions | undefined } {
  const concurrency = parsePositiveInt('--concurrency', flags.concurrency) ?? DEFAULT_CONCURRENCY;
  // Without --port the daemon serves nothing and needs no API token.
  const serve = flags.port === undefined && flags.host === undefined ? undefined : parseServeFlags(flags, env);
  return { concurrency, serve };
}

/**
 * `onStarted` hands the running scheduler to whoever serves alongside it (`nextRuns()`,
 * `runsInFlight()`: the seam for the REST API), and the session it runs on.
 */
export async function daemonCommand(
  io: CliIO,
  configFile: string | undefined,
  flags: DaemonFlags,
  stop: AbortSignal,
  onStarted?: (scheduler: Scheduler, session: Session) => void,
): Promise<number> {
  const { concurrency, serve } = parseDaemonFlags(flags, io.env);
  return withSession(io, configFile, async (session) => {
    // The daemon's log is its output: info lines even on a terminal (the CLI shows warnings only there).
    const log = daemonLogger(io, session.clock);
    const leaseTtlMs = session.leaseTtlMs ?? LEASE_TTL_MS;
    const runSession: Session = { ...session, log, leaseTtlMs, actor: daemonActor(io.env) };
    const monitor = createRunMonitor({
      dsn: io.env.SENTRY_DSN,
      clock: session.clock,
      ...(io.env.SENTRY_ENVIRONMENT ? { environment: io.env.SENTRY_ENVIRONMENT } : {}),
    });
    const scheduler = new Scheduler(
      {
        policies: session.config.policies,
        concurrency,
        leaseTtlMs,
        owner: `daemon:${os.hostname()}:${process.pid}`,
        // A lease held elsewhere is looked at again every quarter of its TTL (at most 15 s): a
        // waiting run starts soon after the holder lets go, or once a dead holder's lease expired.
        retryMs: Math.min(15_000, leaseTtlMs / 4),
      },
      {
        control: session.control,
        clock: session.clock,
        timer: systemTimer,
        log,
        monitor,
        // `json`: no progress line on a terminal; the log says what each run does.
        run: async (policy, { control, signal }) => {
          const options = { ...SCHEDULED, signal };
          const [report] = await runPolicies({ ...runSession, control }, [policy], { json: true }, options);
          return report;
        },
      },
    );
    const diskWatch = watchDisks(runSession, stop, (error, stage) => monitor.captureError(error, { stage }));
    // The server first: a port in use is exit 2 before the scheduler has started any run.
    const server = serve ? await startServing(runSession, serve) : undefined;
    try {
      await scheduler.start();
      diskWatch?.start();
      onStarted?.(scheduler, runSession);
      await stopped(stop);
      await Promise.all([scheduler.stop(String(stop.reason ?? 'stopped')), diskWatch?.stop()]);
    } finally {
      await server?.close();
      await monitor.flush();
    }
    return 0;
  });
}

/**
 * The disk monitor of the daemon (lib/daemon/diskWatch.ts), when any policy lives on a local file
 * system: alerts to the log, the alert file and Sentry; emergency runs on the daemon's session,
 * stopped by the daemon's own stop like its scheduled runs.
 */
function watchDisks(
  session: Session,
  stop: AbortSignal,
  captureError: (error: unknown, stage: string) => void,
): DiskWatch | undefined {
  const { config, clock, log, io } = session;
  if (fsRootsOf(config.policies).length === 0) return undefined;
  const alertFile = alertFileOf(config, io);
  return new DiskWatch(config.policies, config.disk, {
    log,
    timer: systemTimer,
    probe: statfsProbe,
    check: () =>
      checkDisks(config.policies, config.disk, {
        probe: statfsProbe,
        clock,
        log,
        alertFile,
        sendAlert: (alert) => captureAlert(operationalAlert(alert)),
      }),
    runEmergency: async (policy, emergency) => {
      const options = { ...SCHEDULED, signal: stop, emergency };
      const [report] = await runPolicies(session, [policy], { json: true }, options);
      return report;
    },
    isPaused: async (policy) => (await session.control.pausedBy(policy)) !== null,
    captureError,
  });
}

function daemonLogger(io: CliIO, clock: Clock): Logger {
  return new Logger({ sink: io.stderr, level: levelFromEnv(io.env.RETENTION_LOG_LEVEL ?? 'info'), clock });
}

/** Recorded in the audit trail as who deleted: `daemon:alice@host` unless `RETENTION_ACTOR` names it. */
function daemonActor(env: NodeJS.ProcessEnv): string {
  return env.RETENTION_ACTOR ?? `daemon:${env.USER ?? os.userInfo().username}@${os.hostname()}`;
}

function stopped(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
