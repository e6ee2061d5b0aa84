import { createHash, timingSafeEqual } from 'node:crypto';
import { describeCause } from '../errors.ts';
import { redact } from '../redact.ts';
import { assessHealth } from '../reports/health.ts';
import type { Runtime } from './runtime.ts';

/**
 * `GET` on the health function's URL: per policy status, last and next run, 24h counts, overdue
 * and SLA; HTTP 503 when any enabled policy is unhealthy (or the control store cannot be read),
 * so an uptime checker alerts on a retention system that quietly stopped. A bearer token guards it;
 * without the right one the answer is 401 and carries no data.
 */
export interface FunctionUrlEvent {
  headers?: Record<string, string | undefined>;
  requestContext?: { http?: { method?: string } };
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface HealthHandlerOptions {
  /** The expected bearer token; absent or empty: every request is refused (fail closed). */
  token: string | undefined;
  missedAfterMs?: number;
  /** Runs read per policy; the 24h counts cover at most this many runs. */
  runsPerPolicy?: number;
}

export function createHealthHandler(runtime: Runtime, options: HealthHandlerOptions) {
  if (!options.token)
    runtime.log.error('health_token_missing', {
      fix: 'set the RetentionHealthToken secret; every request is refused until then',
    });

  return async function handler(event: FunctionUrlEvent): Promise<HttpResponse> {
    try {
      // Not an HTTP event at all (null, an array, a string): refused as such, without reading it.
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        return respond(400, {
          error: 'bad_payload',
          message: 'error: event: must be a Function URL request object (invoke the function through its URL)',
        });
      }
      if (!bearerMatches(header(event, 'authorization'), options.token)) {
        return respond(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
      }
      const method = event.requestContext?.http?.method ?? 'GET';
      if (method !== 'GET') return respond(405, { error: `method ${method} not allowed` }, { allow: 'GET' });

      const { config, control } = await runtime.ready();
      const health = await assessHealth(config.policies, control, runtime.clock.now(), options);
      return respond(health.status === 'healthy' ? 200 : 503, health);
    } catch (error) {
      // Unable to look is reported as unhealthy: a health check must not pass by failing to check.
      runtime.log.error('health_check_failed', { error: describeCause(error) });
      return respond(503, { status: 'unhealthy', error: `health check failed: ${describeCause(error)}` });
    } finally {
      await runtime.flush();
    }
  };
}

function header(event: FunctionUrlEvent, name: string): string | undefined {
  // Function URLs lower-case header names; direct invocations may not.
  const entry = Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name);
  return typeof entry?.[1] === 'string' ? entry[1] : undefined;
}

/** Constant-time: both sides are hashed first, so neither length nor content leaks through timing. */
export function bearerMatches(authorization: string | undefined, token: string | undefined): boolean {
  if (!token || !authorization) return false;
  const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
  if (!match) return false;
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** Redacted: problems quote the error messages of past runs. */
function respond(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  const allHeaders = { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers };
  return { statusCode, headers: allHeaders, body: JSON.stringify(redact(body)) };
}
