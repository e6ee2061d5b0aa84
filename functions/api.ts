import path from 'node:path';
import { createApiHandler } from '../lib/serverless/apiHandler.ts';
import { API_DASHBOARD_DIR } from '../lib/serverless/naming.ts';
import { runtime, secret } from './adapter.ts';
import { CONTROLS } from './control.ts';

/**
 * The REST API and dashboard behind the Function URL: `Authorization: Bearer <RetentionApiToken or
 * RetentionViewerToken>`. The dashboard's files are copied beside the bundle by the deployment.
 */
const taskRoot = process.env.LAMBDA_TASK_ROOT;
export const handler = createApiHandler(runtime(CONTROLS), {
  tokens: { operator: secret('apiToken'), viewer: secret('viewerToken') },
  env: process.env,
  dashboardDir: taskRoot ? path.join(taskRoot, API_DASHBOARD_DIR) : undefined,
});
