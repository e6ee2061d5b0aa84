import { loadConfig, parseConfig } from '../config/load.ts';
import { checkFsRoots } from '../config/roots.ts';
import type { RetentionConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';

/**
 * The config a deployment uses: the bundled `retention.config.ts` (functions and `sst.config.ts`
 * import it statically, so it ships inside the bundle), unless `RETENTION_CONFIG` names a file
 * (tests, local runs, deploying another config). Validated either way, fs roots included (no
 * $RETENTION_HOME: functions never run the embedded control store).
 */
export async function resolveConfig(bundled: unknown, env: NodeJS.ProcessEnv): Promise<RetentionConfig> {
  if (env.RETENTION_CONFIG) return (await loadConfig(env.RETENTION_CONFIG)).config;
  if (bundled === undefined) {
    throw ConfigError.single(
      'RETENTION_CONFIG',
      'no config bundled and none named',
      'bundle retention.config.ts or set RETENTION_CONFIG to a config file',
    );
  }
  const config = parseConfig(bundled);
  await checkFsRoots(config, {});
  return config;
}
