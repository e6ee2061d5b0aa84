import { loadConfig, parseConfig } from '../config/load.ts';
import type { RetentionConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';

/**
 * The config a deployment uses: the bundled `retention.config.ts` (functions and `sst.config.ts`
 * import it statically, so it ships inside the bundle), unless `RETENTION_CONFIG` names a file
 * (tests, local runs, deploying another config). Validated either way.
 */
export async function resolveConfig(bundled: unknown, env: NodeJS.ProcessEnv): Promise<RetentionConfig> {
  if (env.RETENTION_CONFIG) return (await loadConfig(env.RETENTION_CONFIG)).config;
  if (bundled === undefined) {
    throw ConfigError.single('RETENTION_CONFIG', 'no config bundled and none named', 'bundle retention.config.ts or set RETENTION_CONFIG to a config file');
  }
  return parseConfig(bundled);
}
