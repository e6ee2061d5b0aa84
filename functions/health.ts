import { createHealthHandler } from '../lib/serverless/healthHandler.ts';
import { runtime, secret } from './adapter.ts';
import { CONTROLS } from './control.ts';

/** Behind the Function URL: `GET` with `Authorization: Bearer <RetentionHealthToken>`; 503 when any policy is unhealthy. */
export const handler = createHealthHandler(runtime(CONTROLS), { token: secret('healthToken') });
