import type { Context, Hono } from 'hono';
import type * as z from 'zod';
import { type ApiTokens, actorFor, type Role, roleFor } from './auth.ts';
import { ApiError } from './http.ts';

/**
 * Every route is declared once, here-shaped: method, path, who may call it, what it takes. The
 * declaration installs the access check and feeds the OpenAPI document, so a route cannot exist
 * without both (the API test walks the document and calls each route with each token).
 */
export type Access = 'public' | Role;

export interface Operation {
  method: 'get' | 'post' | 'delete';
  /** Hono syntax: `/api/runs/:runId`. */
  path: string;
  access: Access;
  summary: string;
  /** What the body must be (actions); its JSON Schema goes into the document. */
  body?: z.ZodType;
  query?: z.ZodType;
  /** Status → what it means. */
  responses: Record<number, string>;
  /** `text/event-stream` instead of JSON. */
  stream?: boolean;
}

export interface Caller {
  role: Role;
  /** `api:<role>[:<X-Retention-Actor>]`: recorded with every action. */
  actor: string;
}

export type ApiEnv = { Variables: { caller: Caller | null } };
export type Handler = (c: Context<ApiEnv>) => Promise<Response> | Response;

const RANK: Record<Access, number> = { public: 0, viewer: 1, operator: 2 };

export class Routes {
  readonly operations: Operation[] = [];

  constructor(
    private readonly app: Hono<ApiEnv>,
    private readonly tokens: ApiTokens,
  ) {}

  add(operation: Operation, handler: Handler): void {
    this.operations.push(operation);
    this.app.on(operation.method.toUpperCase(), operation.path, async (c) => {
      c.set('caller', this.authorize(c, operation.access));
      return handler(c);
    });
  }

  /**
   * 401 without a valid token, 403 with a viewer token on an action; public routes note who
   * called (`/healthz` gives its detail to token holders).
   */
  private authorize(c: Context<ApiEnv>, access: Access): Caller | null {
    const role = roleFor(this.tokens, c.req.header('authorization'));
    if (role === null) {
      if (access === 'public') return null;
      throw new ApiError(
        401,
        'unauthorized',
        'a bearer token is required (Authorization: Bearer <RETENTION_API_TOKEN or RETENTION_VIEWER_TOKEN>)',
      );
    }
    if (RANK[role] < RANK[access]) {
      throw new ApiError(
        403,
        'forbidden',
        `the ${role} token may not do this: it needs the operator token (RETENTION_API_TOKEN)`,
      );
    }
    return { role, actor: actorFor(role, c.req.header('x-retention-actor')) };
  }
}

/** The caller of a route that requires a token (the access check has run). */
export function callerOf(c: Context<ApiEnv>): Caller {
  const caller = c.get('caller');
  if (!caller) throw new ApiError(401, 'unauthorized', 'a bearer token is required');
  return caller;
}

/** A path parameter of the route (declared in its path, so always there). */
export function pathParam(c: Context<ApiEnv>, name: string): string {
  return c.req.param(name) ?? '';
}
