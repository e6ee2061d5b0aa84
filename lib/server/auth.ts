import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError, type InputIssue } from '../errors.ts';

/**
 * Who may do what through the REST API. Two bearer tokens from the environment: the operator's
 * (`RETENTION_API_TOKEN`: reads and actions) and the viewer's (`RETENTION_VIEWER_TOKEN`: reads
 * only). Tokens are compared as SHA-256 digests with `timingSafeEqual`: equal lengths whatever
 * was sent, so neither a token's length nor its content leaks through response times.
 */
export type Role = 'viewer' | 'operator';

export interface ApiTokens {
  operator?: string;
  viewer?: string;
}

/** Guessable tokens protect nothing: 16 characters is 64 bits of hex, the least we take. */
const MIN_TOKEN_CHARS = 16;
const GENERATE = 'generate one with: openssl rand -hex 32';

/** Both tokens from the environment; a server with neither would serve nothing, so it refuses to start. */
export function tokensFromEnv(env: NodeJS.ProcessEnv): ApiTokens {
  const operator = env.RETENTION_API_TOKEN || undefined;
  const viewer = env.RETENTION_VIEWER_TOKEN || undefined;
  const issues: InputIssue[] = [];
  if (!operator && !viewer) {
    issues.push({
      path: 'RETENTION_API_TOKEN',
      message: 'neither RETENTION_API_TOKEN (operator) nor RETENTION_VIEWER_TOKEN (read only) is set',
      fix: `set at least one in the environment; ${GENERATE}`,
    });
  }
  for (const [name, token] of [
    ['RETENTION_API_TOKEN', operator],
    ['RETENTION_VIEWER_TOKEN', viewer],
  ] as const) {
    if (token !== undefined && token.length < MIN_TOKEN_CHARS) {
      issues.push({
        path: name,
        message: `is ${token.length} characters long, shorter than ${MIN_TOKEN_CHARS}`,
        fix: GENERATE,
      });
    }
  }
  // One token for both roles would make every viewer an operator.
  if (operator && operator === viewer) {
    issues.push({
      path: 'RETENTION_VIEWER_TOKEN',
      message: 'equals RETENTION_API_TOKEN',
      fix: 'give viewers a token of their own',
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { ...(operator ? { operator } : {}), ...(viewer ? { viewer } : {}) };
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Resolves an `Authorization` header to a role; null for none, a malformed header or a wrong token. */
export function roleFor(tokens: ApiTokens, authorization: string | undefined): Role | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return null;
  const given = digest(match[1]!);
  // Both comparisons always run, so the time taken does not tell which token was close.
  const operator = tokens.operator !== undefined && timingSafeEqual(given, digest(tokens.operator));
  const viewer = tokens.viewer !== undefined && timingSafeEqual(given, digest(tokens.viewer));
  return operator ? 'operator' : viewer ? 'viewer' : null;
}

/**
 * `X-Retention-Actor`: who is behind the token, recorded with every action. Plain words only: it
 * goes into audit records and logs.
 */
const ACTOR_NAME = /^[\w.@+-]{1,64}$/;

/** `api:operator`, or `api:operator:alice@example.com` with the header; an unusable header is bad input. */
export function actorFor(role: Role, header: string | undefined): string {
  if (header === undefined || header === '') return `api:${role}`;
  if (!ACTOR_NAME.test(header)) {
    throw ConfigError.single(
      'X-Retention-Actor',
      'must be 1 to 64 letters, digits or . _ @ + -',
      'e.g. X-Retention-Actor: alice@example.com',
    );
  }
  return `api:${role}:${header}`;
}
