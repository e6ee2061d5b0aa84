import { ConfigError, clip } from '../errors.ts';
import { type ApiTokens, tokensFromEnv } from '../server/auth.ts';
import type { Session } from './context.ts';

export interface ServeFlags {
  port?: string;
  host?: string;
}

export interface ServeOptions {
  port: number;
  host: string;
  tokens: ApiTokens;
}

export const DEFAULT_PORT = 8080;

/** Checked before the control store opens: the tokens (none set: refuse to start) and the port. */
export function parseServeFlags(flags: ServeFlags, env: NodeJS.ProcessEnv): ServeOptions {
  const tokens = tokensFromEnv(env);
  const port = flags.port === undefined ? DEFAULT_PORT : Number(flags.port);
  if (flags.port !== undefined && (!/^\d{1,5}$/.test(flags.port) || port > 65_535)) {
    throw ConfigError.single(
      '--port',
      `${JSON.stringify(clip(flags.port))} is not a port`,
      'use 1 to 65535, or 0 for any free port',
    );
  }
  if (flags.host === '')
    throw ConfigError.single(
      '--host',
      'must not be empty',
      'e.g. --host 127.0.0.1 (this machine only) or --host 0.0.0.0',
    );
  return { port, host: flags.host ?? '127.0.0.1', tokens };
}

/**
 * `retention serve`: the REST API and the web dashboard on this config and control store, until
 * `stop` fires (SIGINT/SIGTERM): then runs started from the page stop after their current batch,
 * release their leases, and the command exits 0.
 */
export async function serveCommand(session: Session, options: ServeOptions, stop: AbortSignal): Promise<number> {
  const server = await startServing(session, options);
  await new Promise<void>((resolve) =>
    stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true }),
  );
  await server.close();
  session.io.stdout.write('stopped\n');
  return 0;
}

/** Starts the API and dashboard on the session (`serve`, and `daemon --port`) and says where. */
export async function startServing(session: Session, options: ServeOptions): Promise<{ close(): Promise<void> }> {
  // Loaded here: the other commands need no HTTP server.
  const { startApiServer } = await import('../server/server.ts');
  const server = await startApiServer({
    config: session.config,
    control: session.control,
    clock: session.clock,
    log: session.log,
    tokens: options.tokens,
    port: options.port,
    host: options.host,
    ...(session.leaseTtlMs ? { leaseTtlMs: session.leaseTtlMs } : {}),
  }).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw ConfigError.single(
        '--port',
        `port ${options.port} is in use`,
        'pick another with --port <n>, or --port 0 for any free port',
      );
    if (code === 'EADDRNOTAVAIL')
      throw ConfigError.single('--host', `${options.host} is not an address of this machine`, 'e.g. --host 127.0.0.1');
    throw error;
  });
  const roles = [
    options.tokens.operator ? 'operator (RETENTION_API_TOKEN)' : null,
    options.tokens.viewer ? 'viewer (RETENTION_VIEWER_TOKEN)' : null,
  ];
  session.io.stdout.write(
    [
      `dashboard: ${server.url}/`,
      `API:       ${server.url}/api (OpenAPI: ${server.url}/api/openapi.json)`,
      `tokens:    ${roles.filter(Boolean).join(', ')}`,
      `config:    ${session.configSource}; control store: ${session.controlLocation}`,
      '',
    ].join('\n'),
  );
  return server;
}
