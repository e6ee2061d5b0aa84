import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as z from 'zod';
import { PARSE_OPTIONS, toInputIssues } from '../core/issues.ts';
import { ConfigError, describeCause, type InputIssue } from '../errors.ts';
import { redact } from '../redact.ts';

/**
 * Every error the API answers is JSON: `{ error: { code, message } }`, plus `issues` (field path,
 * what is wrong, the fix) for bad input, whose message is the CLI's `error: <path>: <what> (<fix>)`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly issues?: InputIssue[],
  ) {
    super(message);
  }

  static notFound(what: string): ApiError {
    return new ApiError(404, 'not_found', what);
  }
}

/**
 * Every JSON answer goes through the one redaction (as everything the CLI prints does): run
 * reports and audit records quote store errors, and a hold's reason is whatever was typed.
 */
export function send(
  c: Context,
  body: unknown,
  status: ContentfulStatusCode = 200,
  headers: Record<string, string> = {},
) {
  return c.json(redact(body) as object, status, { 'cache-control': 'no-store', ...headers });
}

export interface ErrorBody {
  error: { code: string; message: string; issues?: InputIssue[] };
}

/**
 * Bad input (a body, a query, a header, an unknown policy) is 400 naming the field. Anything else
 * is a 500 whose message is the cause chain, redacted: an operator needs it, a secret must not leak.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ConfigError) return new ApiError(400, 'bad_request', error.message, error.issues);
  return new ApiError(500, 'internal', describeCause(error));
}

export function errorResponse(c: Context, error: ApiError): Response {
  const body: ErrorBody = {
    error: { code: error.code, message: error.message, ...(error.issues ? { issues: error.issues } : {}) },
  };
  const headers: Record<string, string> = { 'cache-control': 'no-store' };
  if (error.status === 401) headers['www-authenticate'] = 'Bearer';
  return c.json(redact(body), error.status, headers);
}

/** The JSON body, parsed with `schema`; no body at all reads as `{}` (every field optional). */
export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const text = await c.req.text();
  let input: unknown = {};
  if (text.trim() !== '') {
    try {
      input = JSON.parse(text);
    } catch {
      throw new ApiError(400, 'bad_request', 'error: (body): is not JSON (send a JSON object, e.g. {"reason": "…"})');
    }
  }
  return parseInput(schema, input);
}

/** Query parameters (first value of each), parsed with `schema`; paths are the parameter names. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  return parseInput(schema, c.req.query());
}

/**
 * Parses with the config's wording (`error: <path>: <what> (<fix>)`). An unknown field is reported
 * at its own path (`dryrun: unknown field`), not at the object holding it: over HTTP there is no
 * file to look at, so the field's name is the path.
 */
function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input, PARSE_OPTIONS);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue): z.core.$ZodIssue[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ ...issue, keys: [key], path: [...issue.path, key] }))
      : [issue],
  );
  throw new ConfigError(toInputIssues(new z.ZodError(issues)));
}
