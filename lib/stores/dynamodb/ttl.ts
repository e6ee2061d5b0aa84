import { DescribeTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { NativeExpiryInput, NativeExpiryPlan } from '../../core/store.ts';
import type { DynamoTokensStoreConfig } from './schema.ts';

/**
 * DynamoDB TTL on a tokens table (`retention lifecycle`): is it on, and on the attribute the
 * policy reads? TTL deletes an item at some point after its expiry (typically within a few
 * days, possibly at once), so it cannot keep the policy's grace after expiry, nor hold anything,
 * nor audit: it is a free backstop next to the sweeper, never its replacement.
 */
export async function ttlPlan(
  client: DynamoDBClient,
  store: DynamoTokensStoreConfig,
  input: NativeExpiryInput,
  send: { abortSignal?: AbortSignal },
): Promise<NativeExpiryPlan> {
  const described = await client.send(new DescribeTimeToLiveCommand({ TableName: store.table }), send);
  const status = described.TimeToLiveDescription?.TimeToLiveStatus ?? 'DISABLED';
  const attribute = described.TimeToLiveDescription?.AttributeName;
  const wanted = store.expiresAttribute;
  const enable = `aws dynamodb update-time-to-live --table-name ${store.table} --time-to-live-specification "Enabled=true, AttributeName=${wanted}"`;
  const reasons = [
    `TTL deletes from the expiry on (typically within a few days, possibly at once): it cannot keep the policy's grace of ${typeof input.retention === 'string' ? input.retention : 'its rules'} past the expiry`,
  ];
  if (input.holds.length > 0) reasons.push(`${input.holds.length} legal hold(s) apply: TTL would delete held tokens`);
  const on = status === 'ENABLED' || status === 'ENABLING';
  if (on && attribute !== wanted)
    reasons.push(
      `TTL is on attribute "${attribute}", the policy reads "${wanted}": the two expire different things (check which the application writes)`,
    );
  const notes = on
    ? [
        `TTL is a backstop here: the sweeper still deletes within the grace, audits each token and measures the overdue; tokens TTL removed first show as missing, not deleted`,
      ]
    : [
        `TTL is off: DynamoDB keeps every expired token until the sweeper deletes it. As a free backstop (deletes are not billed), enable it on "${wanted}" (epoch seconds)`,
      ];
  return {
    mechanism: 'dynamodb_ttl',
    equivalent: false,
    reasons,
    current: `TTL ${status.toLowerCase()}${attribute ? ` on "${attribute}"` : ''}`,
    ...(on && attribute === wanted ? {} : { apply: enable }),
    notes,
  };
}
