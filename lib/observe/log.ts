import type { Clock } from '../core/types.ts';
import { systemClock } from '../core/types.ts';
import { redact } from '../redact.ts';

/**
 * Structured logs: one JSON object per line with `timestamp, level, event` and the bound
 * context (`correlation_id` = run id, `policy`, `data_class`, `store`). Lines go to one sink
 * (stderr for the CLI, so `--json` keeps stdout clean; stdout in Lambda). Every line is redacted
 * (lib/observe/redact.ts): no field, whatever its name or nesting, carries a secret.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LineSink {
  write(line: string): void;
}

export interface LoggerOptions {
  sink: LineSink;
  level?: Level;
  clock?: Clock;
}

export class Logger {
  private readonly minimum: number;

  constructor(
    private readonly options: LoggerOptions,
    private readonly context: Record<string, unknown> = {},
  ) {
    this.minimum = LEVELS[options.level ?? 'info'];
  }

  child(context: Record<string, unknown>): Logger {
    return new Logger(this.options, { ...this.context, ...context });
  }

  debug(event: string, fields?: Record<string, unknown>): void {
    this.emit('debug', event, fields);
  }
  info(event: string, fields?: Record<string, unknown>): void {
    this.emit('info', event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.emit('warn', event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.emit('error', event, fields);
  }

  /** Writes a raw JSON line (EMF metrics share the log stream). */
  raw(document: Record<string, unknown>): void {
    this.options.sink.write(`${JSON.stringify(redact(document))}\n`);
  }

  private emit(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    if (LEVELS[level] < this.minimum) return;
    const timestamp = (this.options.clock ?? systemClock).now().toISOString();
    this.raw({ timestamp, level, event, ...this.context, ...fields });
  }
}

export function levelFromEnv(value: string | undefined): Level {
  return value && value in LEVELS ? (value as Level) : 'info';
}

/** A logger that drops everything (library callers that do not want logs). */
export const silentLogger = new Logger({ sink: { write: () => undefined } });
