import type { RetentionConfig } from '../config/schema.ts';
import { type ControlLoaders, openControlWith } from '../control/descriptors.ts';
import type { ControlStore } from '../core/control.ts';
import { type Clock, systemClock } from '../core/types.ts';
import { type LineSink, Logger, levelFromEnv } from '../observe/log.ts';
import { resolveConfig } from './config.ts';

/**
 * What every function builds once per container (cold start) and reuses while warm: the logger
 * and, on first use, the validated config and the migrated control store. A failed start is not
 * cached, so the next invocation retries it instead of failing until the container is recycled.
 * Only what the health function needs too: alerting, stores and the Lambda client belong to the
 * data-class handler, so the health bundle does not carry them.
 */
export interface FlushableSink extends LineSink {
  flush?(): Promise<void>;
}

export interface RuntimeOptions {
  /** The config bundled into the function. `RETENTION_CONFIG` (a file path) wins: tests, local runs. */
  bundledConfig?: unknown;
  /** The control store code the function carries: the kind its deployed config names (functions/). */
  controls: ControlLoaders;
  env: NodeJS.ProcessEnv;
  /** Read by the function adapter from SST secrets (or the environment). */
  databaseUrl?: string | undefined;
  clock?: Clock;
  /** Where log and EMF lines go; stdout by default (CloudWatch reads EMF from it). */
  sink?: FlushableSink;
}

export interface Environment {
  config: RetentionConfig;
  control: ControlStore;
}

export interface Runtime {
  readonly clock: Clock;
  readonly log: Logger;
  /** Config and control store, opened on first use. Throws ConfigError for bad config. */
  ready(): Promise<Environment>;
  /** Writes out buffered log lines before the platform freezes us. */
  flush(): Promise<void>;
  /** Closes the control store (tests; a Lambda container just goes away). */
  close(): Promise<void>;
}

/** stdout, where Lambda's log stream (and CloudWatch's EMF extraction) reads JSON lines. */
export const stdoutSink: FlushableSink = {
  write: (line) => void process.stdout.write(line),
  flush: () => new Promise<void>((resolve) => process.stdout.write('', () => resolve())),
};

export function createRuntime(options: RuntimeOptions): Runtime {
  const clock = options.clock ?? systemClock;
  const sink = options.sink ?? stdoutSink;
  const log = new Logger({ sink, level: levelFromEnv(options.env.RETENTION_LOG_LEVEL), clock });
  let opening: Promise<{ environment: Environment; close: () => Promise<void> }> | undefined;

  const open = async (): Promise<{ environment: Environment; close: () => Promise<void> }> => {
    const config = await resolveConfig(options.bundledConfig, options.env);
    const opened = await openControlWith(options.controls, config.control, {
      env: { ...options.env, ...(options.databaseUrl ? { RETENTION_DATABASE_URL: options.databaseUrl } : {}) },
      // One invocation at a time per container: a small pool, no idle connections piling up on the server.
      poolMax: 2,
    });
    log.info('runtime_ready', { control: opened.location, policies: config.policies.length });
    return { environment: { config, control: opened.control }, close: opened.close };
  };

  return {
    clock,
    log,
    async ready() {
      opening ??= open().catch((error: unknown) => {
        opening = undefined;
        throw error;
      });
      return (await opening).environment;
    },
    async flush() {
      await sink.flush?.();
    },
    async close() {
      const current = opening;
      opening = undefined;
      if (current) await (await current).close();
    },
  };
}
