import os from 'node:os';
import { loadConfig } from '../config/load.ts';
import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import { SHARED_DIRECTORY } from '../control/local/asRoot.ts';
import { acquireEmbeddedPostgres, retentionHome } from '../control/local/embedded.ts';
import type { FallbackDatabase } from '../core/backend.ts';
import type { ControlStore } from '../core/control.ts';
import { requestTimeoutMs } from '../core/deadline.ts';
import { type Clock, systemClock } from '../core/types.ts';
import { openControlStore } from '../deps.ts';
import { ConfigError, clip } from '../errors.ts';
import { type LineSink, Logger, levelFromEnv } from '../observe/log.ts';
import { parseDurationFlag } from './flags.ts';

/** What every command gets: streams, the clock, and lazily the config and control store. */
export interface CliIO {
  stdout: LineSink;
  stderr: LineSink & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface Session {
  io: CliIO;
  clock: Clock;
  log: Logger;
  config: RetentionConfig;
  configSource: string;
  control: ControlStore;
  /** Where the control store lives, for messages (`embedded:/path` or the URL's host). */
  controlLocation: string;
  actor: string;
  /** How long a run's lease lasts without renewal (`RETENTION_LEASE_TTL`, default 60s). */
  leaseTtlMs?: number;
}

/** Shortest lease: renewals go every third of it, and a stalled holder stops after three quarters. */
const MIN_LEASE_TTL_MS = 3_000;

/**
 * `RETENTION_LEASE_TTL`: how soon another run may take over from a holder that died or stalled.
 * Shorter means faster takeover, but more renewals; a holder stalled for 3/4 of it stops itself.
 */
export function leaseTtlFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const ms = parseDurationFlag('RETENTION_LEASE_TTL', env.RETENTION_LEASE_TTL);
  if (ms !== undefined && ms < MIN_LEASE_TTL_MS)
    throw ConfigError.single(
      'RETENTION_LEASE_TTL',
      `${env.RETENTION_LEASE_TTL} is shorter than 3s`,
      'use at least 3s (the default is 60s)',
    );
  return ms;
}

export function cliActor(env: NodeJS.ProcessEnv): string {
  const user = env.RETENTION_ACTOR ?? env.USER ?? os.userInfo().username;
  return `cli:${user}@${os.hostname()}`;
}

export function cliLogger(io: CliIO, clock: Clock): Logger {
  // On a terminal, JSON lines would drown the summary table: show warnings and errors only.
  const fallback = io.stderr.isTTY ? 'warn' : 'info';
  return new Logger({ sink: io.stderr, level: levelFromEnv(io.env.RETENTION_LOG_LEVEL ?? fallback), clock });
}

/** The config as every CLI command loads it: fs roots are checked against this CLI's $RETENTION_HOME too. */
export function loadCliConfig(io: CliIO, configFile: string | undefined): ReturnType<typeof loadConfig> {
  const embeddedAsRoot = {
    path: SHARED_DIRECTORY,
    what: `${SHARED_DIRECTORY} (the embedded PostgreSQL's files when run as root)`,
  };
  return loadConfig(configFile, io.cwd, {
    retentionHome: retentionHome(io.env, io.cwd),
    ownDirectories: [embeddedAsRoot],
  });
}

/**
 * Loads and validates the config, then opens the control store: the configured database,
 * `RETENTION_DATABASE_URL`, or the embedded PostgreSQL under $RETENTION_HOME. The config is
 * validated first, and then `prepare` checks the command's flags against it (policy names,
 * conflicting options), so bad input never starts a server or touches a table.
 */
export async function withSession<T, P = undefined>(
  io: CliIO,
  configFile: string | undefined,
  use: (session: Session, prepared: P) => Promise<T>,
  prepare?: (config: RetentionConfig) => P,
): Promise<T> {
  const clock = systemClock;
  const leaseTtlMs = leaseTtlFromEnv(io.env);
  // Read where requests are made; checked here so that a bad value stops the command before anything is opened.
  requestTimeoutMs(io.env);
  const { config, source } = await loadCliConfig(io, configFile);
  const prepared = prepare ? prepare(config) : (undefined as P);
  const opened = await openWithEmbeddedFallback(io, config);
  try {
    const session: Session = {
      io,
      clock,
      log: cliLogger(io, clock),
      config,
      configSource: source,
      control: opened.control,
      controlLocation: opened.location,
      actor: cliActor(io.env),
      ...(leaseTtlMs ? { leaseTtlMs } : {}),
    };
    return await use(session, prepared);
  } finally {
    await opened.close();
  }
}

/**
 * The control store, with the embedded PostgreSQL as the database when none is configured. That
 * server is then started at once, while the control store's code (both SQL drivers) loads: the
 * two overlapped save a CLI run most of the start's wait. Only after the config and the flags
 * were found valid, so bad input still starts nothing.
 */
async function openWithEmbeddedFallback(io: CliIO, config: RetentionConfig) {
  const early = !config.control && !io.env.RETENTION_DATABASE_URL ? embeddedDatabase(io) : undefined;
  // Awaited by the fallback below; until then a failed start must not count as unhandled.
  early?.catch(() => undefined);
  try {
    return await openControlStore(config, { env: io.env, fallback: () => early ?? embeddedDatabase(io) });
  } catch (error) {
    // The opener may have failed before taking the server (its code did not load): let it go (idempotent).
    await early?.then(
      (database) => database.release(),
      () => undefined,
    );
    throw error;
  }
}

async function embeddedDatabase(io: CliIO): Promise<FallbackDatabase> {
  const home = retentionHome(io.env, io.cwd);
  const embedded = await acquireEmbeddedPostgres(home);
  if (embedded.notice) io.stderr.write(`notice: ${embedded.notice}\n`);
  return { url: embedded.url, location: `embedded PostgreSQL in ${home}`, release: embedded.release };
}

/**
 * `--policy a --policy b` or `--all`; unknown names are input errors listing the known ones.
 * `flag` is how the command takes the name (`<policy>` for `lease break <policy>`).
 */
export function selectPolicies(
  config: RetentionConfig,
  names: string[] | undefined,
  all: boolean | undefined,
  flag = '--policy',
): PolicyConfig[] {
  const known = config.policies.map((policy) => policy.name);
  if (names && names.length > 0 && all) {
    throw ConfigError.single(flag, 'both --policy and --all given', 'pass one or the other');
  }
  if (all) return config.policies;
  if (!names || names.length === 0) {
    if (config.policies.length === 1) return config.policies;
    throw ConfigError.single(
      flag,
      `the config has ${known.length} policies`,
      `name one with --policy <name> (${known.join(', ')}) or pass --all`,
    );
  }
  return names.map((name) => {
    const policy = config.policies.find((candidate) => candidate.name === name);
    if (!policy)
      throw ConfigError.single(flag, `no policy named ${JSON.stringify(clip(name))}`, `known: ${known.join(', ')}`);
    return policy;
  });
}
