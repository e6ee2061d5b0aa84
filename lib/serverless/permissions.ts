import { type ControlConfig, type ControlKind, controlBackend, DEFAULT_CONTROL } from '../control/descriptors.ts';
import type {
  AwsScope,
  ControlAccess,
  ControlDeployment,
  DynamoTable,
  Grant,
  Refusal,
  StoreDeployment,
  StoreUse,
} from '../core/backend.ts';
import type { InputIssue } from '../errors.ts';
import { type StoreConfig, storeBackend } from '../stores/descriptors.ts';

/**
 * What a deployment gives each store and control store, asked of the descriptor of its kind
 * (`deployment`, next to the backend's code in stores/<kind>/ and control/<kind>/). Actions are
 * exactly the calls the backend's code sends (test/integration/deployment-grants.test.ts replays
 * real runs against them); resources are named tables, indexes, buckets and prefixes, never `*`.
 */

/** The deployment part of the store's own descriptor, whose schema parsed it. */
function deploymentOf(store: StoreConfig): StoreDeployment<StoreConfig> {
  return storeBackend(store.kind).deployment as StoreDeployment<never> as StoreDeployment<StoreConfig>;
}

/** What a function needs to use `store` for one policy, or why no Lambda function can. */
export function storePermissions(store: StoreConfig, use: StoreUse): Grant | Refusal {
  return deploymentOf(store).grant(store, use);
}

/** The S3 buckets a store sweeps (none for other kinds). */
export function sweptBuckets(store: StoreConfig): string[] {
  return deploymentOf(store).buckets?.swept(store) ?? [];
}

/** The S3 bucket a store backs up to at `to` (none for other kinds, or if `to` names none). */
export function backupBucket(store: StoreConfig, to: string): string | undefined {
  return deploymentOf(store).buckets?.backup(to);
}

/** The deployment part of the control store's own descriptor, whose schema parsed it. */
function controlDeploymentOf(control: ControlConfig): ControlDeployment<ControlConfig> {
  const deployment = controlBackend(control.kind).deployment;
  return deployment as ControlDeployment<never> as ControlDeployment<ControlConfig>;
}

/** The control store, with the access the function needs; none configured: the default kind's. */
export function controlPermissions(control: ControlConfig | undefined, access: ControlAccess, aws: AwsScope): Grant {
  if (!control) return DEFAULT_CONTROL.deployment.grant(undefined, access, aws);
  return controlDeploymentOf(control).grant(control, access, aws);
}

/** Why the configured control store cannot be deployed in `aws`. */
export function controlIssues(control: ControlConfig | undefined, aws: AwsScope): InputIssue[] {
  return control ? (controlDeploymentOf(control).check?.(control, aws) ?? []) : [];
}

/** The table the deployment declares for the control store, if its kind has one. */
export function controlTable(control: ControlConfig | undefined): DynamoTable | undefined {
  return control ? controlDeploymentOf(control).table?.(control) : undefined;
}

/** The control store kind a config uses. */
export function controlKind(control: ControlConfig | undefined): ControlKind {
  return control?.kind ?? DEFAULT_CONTROL.kind;
}
