import type { PolicyConfig, RetentionConfig } from '../config/schema.ts';
import type { NativeExpiryPlan } from '../core/store.ts';
import { ConfigError } from '../errors.ts';
import { withOpenStore } from '../stores/registry.ts';
import type { Session } from './context.ts';
import { selectPolicies } from './context.ts';

export interface LifecycleFlags {
  policy?: string[];
  json?: boolean;
}

export interface LifecycleOptions {
  policy: PolicyConfig;
  json: boolean;
}

/** Kinds whose backend has an expiry of its own. */
const NATIVE_EXPIRY: Record<string, string> = { s3: 'S3 Lifecycle', dynamodb: 'DynamoDB TTL' };

/** One policy, of a store with a native expiry; checked before anything opens. */
export function parseLifecycleFlags(config: RetentionConfig, flags: LifecycleFlags): LifecycleOptions {
  const [policy, ...more] = selectPolicies(config, flags.policy, false);
  if (!policy || more.length > 0) throw ConfigError.single('--policy', 'name one policy', 'e.g. --policy pdfs');
  if (!(policy.store.kind in NATIVE_EXPIRY))
    throw ConfigError.single(
      '--policy',
      `${policy.name} keeps its data in a ${policy.store.kind} store, which has no expiry of its own`,
      'only s3 (Lifecycle) and dynamodb (TTL) policies can be pushed down',
    );
  return { policy, json: flags.json ?? false };
}

/**
 * `retention lifecycle`: the backend's own expiry for a policy (S3 Lifecycle rules, DynamoDB TTL),
 * whether it would do the policy's job exactly (never earlier, nothing held) and, where it would
 * not, why. Read-only: it prints the configuration and the command that applies it.
 */
export async function lifecycleCommand(session: Session, options: LifecycleOptions): Promise<number> {
  const { policy } = options;
  const plan = await withOpenStore(policy, async (store) =>
    store.nativeExpiry!.plan({
      policy: policy.name,
      retention: policy.retention,
      holds: await session.control.listHolds(policy.name),
      backup: 'backup' in policy && policy.backup !== undefined,
    }),
  );
  session.io.stdout.write(
    options.json ? `${JSON.stringify({ policy: policy.name, ...plan }, null, 2)}\n` : describe(policy.name, plan),
  );
  return 0;
}

function describe(policy: string, plan: NativeExpiryPlan): string {
  const mechanism = plan.mechanism === 's3_lifecycle' ? 'S3 Lifecycle' : 'DynamoDB TTL';
  const lines = [
    plan.equivalent
      ? `${policy}: ${mechanism} can do this policy's deleting: it expires what the policy would, never earlier`
      : `${policy}: ${mechanism} cannot replace the sweeper:`,
    ...plan.reasons.map((reason) => `  - ${reason}`),
  ];
  if (plan.current) lines.push(`now: ${plan.current}`);
  if (plan.configuration !== undefined) lines.push('', 'lifecycle.json:', JSON.stringify(plan.configuration, null, 2));
  if (plan.apply) lines.push('', `${plan.equivalent ? 'apply' : 'apply anyway (not equivalent)'}:`, `  ${plan.apply}`);
  if (plan.notes.length > 0) lines.push('', 'notes:', ...plan.notes.map((note) => `  - ${note}`));
  return `${lines.join('\n')}\n`;
}
