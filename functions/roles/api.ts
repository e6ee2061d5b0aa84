import path from 'node:path';
import type { ControlLoaders } from '../../lib/control/descriptors.ts';
import { createApiHandler } from '../../lib/serverless/apiHandler.ts';
import { API_DASHBOARD_DIR } from '../../lib/serverless/naming.ts';
import { runtime, secret } from '../adapter.ts';

/**
 * The REST API and dashboard behind the Function URL: `Authorization: Bearer <RetentionApiToken or
 * RetentionViewerToken>`. The dashboard's files are copied beside the bundle by the deployment.
 */
export function apiHandler(controls: ControlLoaders) {
  const taskRoot = process.env.LAMBDA_TASK_ROOT;
  return createApiHandler(runtime(controls), {
    tokens: { operator: secret('apiToken'), viewer: secret('viewerToken') },
    env: process.env,
    dashboardDir: taskRoot ? path.join(taskRoot, API_DASHBOARD_DIR) : undefined,
  });
}
