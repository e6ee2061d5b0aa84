import type { LambdaClient } from '@aws-sdk/client-lambda';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import type { DataClass } from '../core/types.ts';
import { ConfigError, describeCause, formatIssue, type InputIssue } from '../errors.ts';
import { redact } from '../redact.ts';
import { type ApiTokens, tokensFromEnv } from '../server/auth.ts';
import { createApi } from '../server/server.ts';
import type { HttpResponse } from './healthHandler.ts';
import { InvokeLauncher } from './invokeLauncher.ts';
import { dataClassFunction, SECRET_ENV, SECRETS, type SecretKey } from './naming.ts';
import type { Runtime } from './runtime.ts';

/**
 * The REST API and dashboard of `retention serve` behind a Function URL (payload format 2.0),
 * over the deployed control store. What differs from `serve` is what a Lambda cannot do: runs
 * are started by an asynchronous invoke of their data-class function (invokeLauncher.ts), a run's
 * events are one snapshot per request (the Function URL buffers responses), and holds are not
 * checked against the stores (the function is granted none). The bearer tokens are checked by
 * the app itself, as by `serve`: the URL's own auth is NONE.
 */
export interface ApiHandlerOptions {
  /** From the SST secrets RetentionApiToken (operator) and RetentionViewerToken (read only). */
  tokens: { operator: string | undefined; viewer: string | undefined };
  /** Where the data-class functions' names are read (`RETENTION_FUNCTION_<CLASS>`). */
  env: NodeJS.ProcessEnv;
  /** The dashboard's files as the deployment copies them; the checkout's when absent (tests). */
  dashboardDir?: string | undefined;
  /** For tests (a local Invoke API); created on first use otherwise. */
  lambda?: LambdaClient;
  /** How long a started run is waited for in history before the API answers anyway. */
  recordWaitMs?: number;
}

type UrlHandler = (event: LambdaEvent) => Promise<HttpResponse>;

const NO_STORE_ACCESS =
  'the cloud API is granted no access to the stores; ' +
  'see what it holds with a dry run with list: true, or check with `retention hold add` where the stores are reachable';

export function createApiHandler(runtime: Runtime, options: ApiHandlerOptions) {
  // Checked at cold start, as `serve` checks them before it listens: without a token nothing may be served.
  const tokens = readTokens(options.tokens);
  if (tokens instanceof ConfigError) runtime.log.error('api_tokens_missing', { issues: tokens.issues });
  let lambda = options.lambda;
  let building: Promise<UrlHandler> | undefined;

  const build = async (apiTokens: ApiTokens): Promise<UrlHandler> => {
    const { config, control } = await runtime.ready();
    const launcher = new InvokeLauncher({
      control,
      clock: runtime.clock,
      log: runtime.log,
      lambda: async () => (lambda ??= new (await import('@aws-sdk/client-lambda')).LambdaClient({})),
      functionFor: (dataClass: DataClass) => dataClassFunction(options.env, dataClass),
      ...(options.recordWaitMs !== undefined ? { recordWaitMs: options.recordWaitMs } : {}),
    });
    const api = await createApi({
      config,
      control,
      log: runtime.log,
      tokens: apiTokens,
      clock: runtime.clock,
      launcher,
      streaming: false,
      holdChecking: { stores: false, reason: NO_STORE_ACCESS },
      ...(options.dashboardDir !== undefined ? { dashboardDir: options.dashboardDir } : {}),
    });
    // Everything the API and dashboard send is text; hono's default would base64 the event stream.
    return handle(api.app, { isContentTypeBinary: (type) => !/^text\/|[/+]json\s*(;|$)/i.test(type) }) as UrlHandler;
  };

  return async function handler(event: unknown): Promise<HttpResponse> {
    try {
      if (tokens instanceof ConfigError) return refuse(503, 'not_configured', tokens.issues);
      if (!isUrlEvent(event)) {
        const issue = {
          path: 'event',
          message: 'must be a Function URL request (payload format 2.0)',
          fix: 'call the function through its URL',
        };
        return refuse(400, 'bad_payload', [issue]);
      }
      building ??= build(tokens).catch((error: unknown) => {
        // Not cached: the next request tries again (a control store that was briefly unreachable).
        building = undefined;
        throw error;
      });
      return await (await building)(event);
    } catch (error) {
      runtime.log.error('api_start_failed', { error: describeCause(error) });
      if (error instanceof ConfigError) return refuse(503, 'bad_config', error.issues);
      return respond(503, { error: { code: 'unavailable', message: describeCause(error) } });
    } finally {
      await runtime.flush();
    }
  };
}

/** The tokens as `serve` takes them, the issues naming the SST secrets to set. */
function readTokens(given: ApiHandlerOptions['tokens']): ApiTokens | ConfigError {
  try {
    return tokensFromEnv({ RETENTION_API_TOKEN: given.operator, RETENTION_VIEWER_TOKEN: given.viewer });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const secretOf = (path: string): string => {
      const key = (Object.keys(SECRET_ENV) as SecretKey[]).find((candidate) => SECRET_ENV[candidate] === path);
      return key ? SECRETS[key] : path;
    };
    return new ConfigError(
      error.issues.map((issue) => ({
        ...issue,
        path: secretOf(issue.path),
        fix: `${issue.fix}, then: npx sst secret set ${secretOf(issue.path)} <token> --stage <stage>`,
      })),
    );
  }
}

/** Function URL events carry `requestContext.http` and `rawPath`; anything else was not sent through the URL. */
function isUrlEvent(event: unknown): event is LambdaEvent {
  if (typeof event !== 'object' || event === null) return false;
  const { requestContext, rawPath } = event as { requestContext?: { http?: unknown }; rawPath?: unknown };
  return typeof rawPath === 'string' && typeof requestContext?.http === 'object';
}

function refuse(statusCode: number, code: string, issues: InputIssue[]): HttpResponse {
  return respond(statusCode, { error: { code, message: issues.map(formatIssue).join('\n'), issues } });
}

function respond(statusCode: number, body: unknown): HttpResponse {
  const headers = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  return { statusCode, headers, body: JSON.stringify(redact(body)) };
}
