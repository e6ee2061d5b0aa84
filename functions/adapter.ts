import { Resource } from 'sst/resource';
import type { ControlLoaders } from '../lib/control/descriptors.ts';
import { SECRET_ENV, SECRETS, type SecretKey } from '../lib/serverless/naming.ts';
import { createRuntime, type Runtime } from '../lib/serverless/runtime.ts';
import bundledConfig from '../retention.config.ts';

/**
 * The only code that knows about SST: reads linked secrets once per container (cold start) and
 * hands plain values to lib/. Where SST links are absent (tests, local runs) each secret falls back
 * to its environment variable, so the same handlers run anywhere.
 */
export function secret(key: SecretKey): string | undefined {
  const linked = Resource as unknown as Record<string, { value?: string } | undefined>;
  const name = SECRETS[key];
  return name in linked ? linked[name]?.value : process.env[SECRET_ENV[key]];
}

/**
 * Config (bundled, or RETENTION_CONFIG) and control store, opened on the first invocation with the
 * control store code this function carries.
 */
export function runtime(controls: ControlLoaders): Runtime {
  return createRuntime({ bundledConfig, controls, env: process.env, databaseUrl: secret('databaseUrl') });
}
