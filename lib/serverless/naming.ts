import type { DataClass } from '../core/types.ts';

/**
 * Names shared by `sst.config.ts` (which creates the resources), the functions (which read them)
 * and `retention invoke` (which calls them): one definition, so they cannot drift apart.
 */
export const DEFAULT_APP = 'data-retention';
export const DEFAULT_STAGE = 'production';

/** SST secrets: `npx sst secret set <name> <value> --stage <stage>`. */
export const SECRETS = {
  databaseUrl: 'RetentionDatabaseUrl',
  blobToken: 'RetentionBlobToken',
  sentryDsn: 'RetentionSentryDsn',
  healthToken: 'RetentionHealthToken',
  apiToken: 'RetentionApiToken',
  viewerToken: 'RetentionViewerToken',
} as const;

export type SecretKey = keyof typeof SECRETS;

/** Environment variable that replaces each secret where SST links are absent (tests, local runs). */
export const SECRET_ENV: Record<SecretKey, string> = {
  databaseUrl: 'RETENTION_DATABASE_URL',
  blobToken: 'BLOB_READ_WRITE_TOKEN',
  sentryDsn: 'SENTRY_DSN',
  healthToken: 'RETENTION_HEALTH_TOKEN',
  apiToken: 'RETENTION_API_TOKEN',
  viewerToken: 'RETENTION_VIEWER_TOKEN',
};

/** Where the API function's package holds the dashboard's files (copied there by the deployment). */
export const API_DASHBOARD_DIR = 'dashboard';

export type FunctionRole = DataClass | 'health' | 'api';

/** Physical Lambda name, set explicitly so operators and the CLI can name it: `data-retention-production-blobs`. */
export function functionName(app: string, stage: string, role: FunctionRole): string {
  return `${app}-${stage}-${role}`;
}

/** Env override of a data class's function name for `retention invoke`: `RETENTION_FUNCTION_BLOBS`. */
export function functionEnvVar(dataClass: DataClass): string {
  return `RETENTION_FUNCTION_${dataClass.toUpperCase()}`;
}

/**
 * The function that runs a data class's policies, as `retention invoke` and the cloud API call it:
 * `RETENTION_FUNCTION_<CLASS>` (the deployment sets it for the API), else the name the app and stage give.
 */
export function dataClassFunction(env: NodeJS.ProcessEnv, dataClass: DataClass): string {
  const app = env.RETENTION_APP ?? DEFAULT_APP;
  return env[functionEnvVar(dataClass)] ?? functionName(app, env.RETENTION_STAGE ?? DEFAULT_STAGE, dataClass);
}

/** `temp-files` → `TempFiles`: SST component names must be PascalCase-ish and unique. */
export function componentName(...parts: string[]): string {
  return parts
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter((word) => word.length > 0)
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join('');
}
