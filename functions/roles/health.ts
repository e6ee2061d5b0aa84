import type { ControlLoaders } from '../../lib/control/descriptors.ts';
import { createHealthHandler } from '../../lib/serverless/healthHandler.ts';
import { runtime, secret } from '../adapter.ts';

/**
 * Behind the Function URL: `GET` with `Authorization: Bearer <RetentionHealthToken>`; 503 when any
 * policy is unhealthy.
 */
export function healthHandler(controls: ControlLoaders) {
  return createHealthHandler(runtime(controls), { token: secret('healthToken') });
}
