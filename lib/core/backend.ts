import type * as z from 'zod';
import type { InputIssue } from '../errors.ts';
import type { ControlStore } from './control.ts';

/**
 * What a backend folder exports from its index.ts: one descriptor saying which configs it takes
 * and what a deployment must give it. index.ts declares it `satisfies` this contract, so a missing
 * part is a type error, and imports schemas and pure code only. The code that runs the backend is
 * apart, in the folder's load*.ts: a loader whose `import()` brings the store code and its SDK or
 * driver when a store opens. The descriptors (stores/descriptors.ts, control/descriptors.ts) are
 * what validating a config and planning a deployment read; the loaders are listed per data class
 * (stores/blobLoaders.ts, …) and per control kind, so that a function's bundle holds the code of
 * what it can run and nothing else (a bundler keeps every `import()` it can reach). A backend is
 * one folder, one descriptor line and one loader line per class it serves.
 */

// ---- What a deployment gives a backend (lib/serverless/deployment.ts gathers it per function).

/** One IAM statement, in the shape of SST's `FunctionPermissionArgs` (effect: allow). */
export interface Statement {
  actions: string[];
  resources: string[];
  conditions?: Condition[];
}

export interface Condition {
  test: 'StringLike';
  variable: 's3:prefix';
  values: string[];
}

/**
 * The secrets a backend may ask a deployment for. serverless/naming.ts names each in SST and in
 * the environment; a key it does not name fails to compile in serverless/deployment.ts.
 */
export type BackendSecret = 'databaseUrl' | 'blobToken';

export interface Grant {
  statements: Statement[];
  secrets: BackendSecret[];
}

/** The account and region the functions run in; ARNs use a store's own region where it has one. */
export interface AwsScope {
  region: string;
  accountId: string;
}

export interface StoreUse {
  aws: AwsScope;
  policy: string;
  /** Where the policy copies what it deletes, when it backs up through this store. */
  backupTo?: string | undefined;
}

/** No Lambda function can serve the store; `path` is relative to the store's parent (`store.kind`). */
export interface Refusal {
  refused: InputIssue;
}

/** Data-class functions run policies; health only reads run history. */
export type ControlAccess = 'read-write' | 'read-only';

/** A DynamoDB table the deployment declares, in the shape of `sst.aws.Dynamo`'s arguments. */
export interface DynamoTable {
  name: string;
  fields: Record<string, 'string' | 'number' | 'binary'>;
  primaryIndex: { hashKey: string; rangeKey?: string };
  globalIndexes: Record<string, { hashKey: string; rangeKey?: string; projection: 'all' | 'keys-only' | string[] }>;
  ttl: string;
}

// ---- Stores: where a policy's items live.

/** How a backend serves one data class: the schema of a policy's `store` entry of that class. */
export interface ClassSupport<Config> {
  schema: z.ZodType<Config>;
}

/** A blob store also keeps a rows policy's linked files, and copies them to `blob.backupTo`. */
export interface BlobSupport<Config> extends ClassSupport<Config> {
  /** Where its copies go, in words: the fix of a missing `blob.backupTo` names it. */
  backupTo: string;
}

export interface StoreDeployment<Config> {
  /** What a function needs to use the store for one policy, or why no Lambda function can. */
  grant: (store: Config, use: StoreUse) => Grant | Refusal;
  /**
   * S3 buckets: those the store sweeps, and the one a backup location names. The deployment
   * declares each backup bucket with an expiry, unless a policy sweeps it (live data).
   */
  buckets?: { swept: (store: Config) => string[]; backup: (to: string) => string | undefined };
}

export interface StoreDescriptor<Config extends { kind: string }> {
  kind: Config['kind'];
  /** The data classes it serves (at least one), each with the schema of a policy's `store`. */
  classes: { blobs?: BlobSupport<Config>; tokens?: ClassSupport<Config>; rows?: ClassSupport<Config> };
  deployment: StoreDeployment<Config>;
}

// ---- Control stores: where the tool's own state lives.

/** The control store opened from the config, migrated before it is handed out. */
export interface OpenedControlStore {
  control: ControlStore;
  /** Where it lives, for messages (`PostgreSQL at host:port/db`, `embedded PostgreSQL in …`). */
  location: string;
  /** Closes the store and releases whatever the fallback started. */
  close(): Promise<void>;
}

/** A database the caller provides when none is configured (the CLI's embedded PostgreSQL). */
export interface FallbackDatabase {
  url: string;
  location: string;
  release(): Promise<void>;
}

export interface ControlStoreOptions {
  /** `RETENTION_DATABASE_URL` is read from here when the config names no database. */
  env: NodeJS.ProcessEnv;
  /** Absent (Lambda): no database configured is a ConfigError. */
  fallback?: () => Promise<FallbackDatabase>;
  /** Connection pool size (a Lambda runs one invocation at a time). */
  poolMax?: number;
}

/**
 * `Unconfigured` is `undefined` for the default kind alone (control/registry.ts): the one that
 * opens, and is granted, when the config names no control store.
 */
export type ControlOpener<Config, Unconfigured = never> = (
  config: Config | Unconfigured,
  options: ControlStoreOptions,
) => Promise<OpenedControlStore>;

export interface ControlDeployment<Config, Unconfigured = never> {
  /** What a function needs to reach the control store, reading and writing or only reading. */
  grant: (config: Config | Unconfigured, access: ControlAccess, aws: AwsScope) => Grant;
  /** Why the config cannot be deployed in `aws` (absent: it always can). */
  check?: (config: Config, aws: AwsScope) => InputIssue[];
  /** A table the deployment declares for the store; the functions get no right to create one. */
  table?: (config: Config) => DynamoTable;
}

export interface ControlDescriptor<Config extends { kind: string }, Unconfigured = never> {
  kind: Config['kind'];
  /** Parses the config's `control` entry. */
  schema: z.ZodType<Config>;
  deployment: ControlDeployment<Config, Unconfigured>;
}
