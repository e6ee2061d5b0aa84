import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { RetentionConfig } from '../config/schema.ts';
import type { ControlStore } from '../core/control.ts';
import { type Clock, systemClock } from '../core/types.ts';
import type { HoldChecking } from '../engine/holdCheck.ts';
import type { Logger } from '../observe/log.ts';
import { addActionRoutes } from './actionRoutes.ts';
import type { ApiTokens } from './auth.ts';
import { addDashboard } from './dashboard.ts';
import { addDiskRoutes } from './diskRoutes.ts';
import { ApiError, errorResponse, toApiError } from './http.ts';
import { type Launcher, RunLauncher } from './launcher.ts';
import { openApiDocument } from './openapi.ts';
import { addReadRoutes } from './readRoutes.ts';
import { type ApiEnv, type Operation, Routes } from './routes.ts';
import type { ApiContext } from './state.ts';

/**
 * The REST API and the web dashboard over one config and control store: what `retention serve`
 * runs, and what the daemon serves beside its scheduler (it may hand in its own launcher).
 */
export interface ApiOptions {
  config: RetentionConfig;
  control: ControlStore;
  log: Logger;
  tokens: ApiTokens;
  clock?: Clock;
  leaseTtlMs?: number;
  /** Runs started through the API go here; by default one of the server's own. */
  launcher?: Launcher;
  /** In the OpenAPI document; package.json's by default. */
  version?: string;
  /** The dashboard's files as the deployment copies them (a bundled function); the checkout's by default. */
  dashboardDir?: string;
  /**
   * False where responses are buffered whole (a Lambda Function URL): a run's events are then one
   * snapshot per request, with a `retry` for the next, instead of a stream that never ends in time.
   */
  streaming?: boolean;
  /** Whether a new hold is checked against the stores (the cloud API has no access to them). */
  holdChecking?: HoldChecking;
}

export interface Api {
  app: Hono<ApiEnv>;
  launcher: Launcher;
  operations: Operation[];
  /** Streams end, runs in flight stop after their current batch and release their leases. */
  close(): Promise<void>;
}

export async function createApi(options: ApiOptions): Promise<Api> {
  const clock = options.clock ?? systemClock;
  const launcher =
    options.launcher ??
    new RunLauncher({
      control: options.control,
      clock,
      log: options.log,
      ...(options.leaseTtlMs ? { leaseTtlMs: options.leaseTtlMs } : {}),
    });
  const closing = new AbortController();
  const ctx: ApiContext = {
    config: options.config,
    control: options.control,
    clock,
    log: options.log,
    launcher,
    closing: closing.signal,
    streaming: options.streaming ?? true,
    holdChecking: options.holdChecking ?? { stores: true },
  };

  const app = new Hono<ApiEnv>();
  app.onError((error, c) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500)
      options.log.error('api_error', { method: c.req.method, path: c.req.path, error: apiError.message });
    return errorResponse(c, apiError);
  });
  app.notFound((c) =>
    errorResponse(c, ApiError.notFound(`no route ${c.req.method} ${c.req.path} (see /api/openapi.json)`)),
  );
  const routes = new Routes(app, options.tokens);
  addReadRoutes(routes, ctx);
  addActionRoutes(routes, ctx);
  addDiskRoutes(routes, ctx);
  const version =
    options.version ?? (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  routes.add(
    { method: 'get', path: '/api/openapi.json', access: 'public', summary: 'This document', responses: { 200: 'OK' } },
    (c) => c.json(openApiDocument(routes.operations, version)),
  );
  await addDashboard(app, options.dashboardDir);
  return {
    app,
    launcher,
    operations: routes.operations,
    close: async () => {
      closing.abort();
      await launcher.close();
    },
  };
}

export interface ApiServer {
  /** `http://host:port`, the dashboard's address. */
  url: string;
  port: number;
  api: Api;
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0: one the OS picks); resolves once listening. */
export async function startApiServer(options: ApiOptions & { port: number; host: string }): Promise<ApiServer> {
  const api = await createApi(options);
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = serve({ fetch: api.app.fetch, port: options.port, hostname: options.host }, () =>
      resolve(listening as Server),
    );
    listening.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  options.log.info('api_listening', { url });
  return {
    url,
    port,
    api,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Runs first (their streams end with `done`), then whatever connections are left (idle keep-alives).
      await api.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
