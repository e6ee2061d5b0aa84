import { createHash } from 'node:crypto';
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { BatchOptions, DynamoItem } from '../../aws/dynamo.ts';
import { isConditionalCheckFailed } from '../../aws/dynamo.ts';
import { byFailures, nextStreaks } from '../../core/attention.ts';
import type { AttentionItem, FailureStreakUpdate } from '../../core/control.ts';
import type { Clock } from '../../core/types.ts';
import { instant, namesOf, num, text } from './items.ts';
import { partitionItems, writeAll } from './table.ts';

/**
 * Failure streaks: one item per (policy, key) in the partition `attention#<policy>` of the
 * control table (sort key: the item key, or its digest past 800 bytes as for intents), read
 * consistently. A run's update reads the partition once, applies core/attention.ts
 * `nextStreaks` and writes the changes in BatchWriteItem calls of 25 (puts and deletes): 10,000
 * failures are 400 calls, 8 in flight, instead of 10,000 UpdateItems. Only the lease holder
 * notes streaks; an operator's dismissal landing between that read and the writes is lost (the
 * item shows again; the dismissal's audit record stays), a window of milliseconds once per run.
 */
const partition = (policy: string): string => `attention#${policy}`;

function streakKey(policy: string, key: string): DynamoItem {
  const sortKey = Buffer.byteLength(key) <= 800 ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
  return { pk: text(partition(policy)), sk: text(sortKey) };
}

function streakItem(item: AttentionItem): DynamoItem {
  return {
    ...streakKey(item.policy, item.key),
    policy: text(item.policy),
    key: text(item.key),
    failures: num(item.failures),
    firstFailedAt: instant(item.firstFailedAt),
    lastFailedAt: instant(item.lastFailedAt),
    lastRunId: text(item.lastRunId),
    lastError: text(item.lastError),
    ...(item.dismissed
      ? {
          dismissedBy: text(item.dismissed.by),
          dismissedReason: text(item.dismissed.reason),
          dismissedAt: instant(item.dismissed.at),
        }
      : {}),
  };
}

const at = (item: DynamoItem, name: string): Date => new Date(Number(item[name]?.N));

function toStreak(item: DynamoItem): AttentionItem {
  return {
    policy: item.policy?.S ?? '',
    key: item.key?.S ?? '',
    failures: Number(item.failures?.N),
    firstFailedAt: at(item, 'firstFailedAt'),
    lastFailedAt: at(item, 'lastFailedAt'),
    lastRunId: item.lastRunId?.S ?? '',
    lastError: item.lastError?.S ?? '',
    dismissed:
      item.dismissedBy?.S === undefined
        ? null
        : { by: item.dismissedBy.S, reason: item.dismissedReason?.S ?? '', at: at(item, 'dismissedAt') },
  };
}

export class DynamoFailureStreaks {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly clock: Clock,
    private readonly writes: BatchOptions,
  ) {}

  async note(update: FailureStreakUpdate): Promise<void> {
    if (update.failed.length === 0 && update.settled.length === 0 && !update.wholePass) return;
    const existing = await this.all(update.policy);
    const { write, end } = nextStreaks(existing, update, this.clock.now());
    const requests = [
      ...end.map((key) => ({ DeleteRequest: { Key: streakKey(update.policy, key) } })),
      ...write.map((item) => ({ PutRequest: { Item: streakItem(item) } })),
    ];
    await writeAll(this.client, this.table, requests, this.writes, 'failure streak', { policy: update.policy });
  }

  async list(policy: string, minFailures: number): Promise<AttentionItem[]> {
    return (await this.all(policy)).filter((item) => item.failures >= minFailures).sort(byFailures);
  }

  async dismiss(policy: string, key: string, by: string, reason: string): Promise<AttentionItem | null> {
    try {
      const response = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: streakKey(policy, key),
          UpdateExpression: 'SET #dismissedBy = :by, #dismissedReason = :reason, #dismissedAt = :at',
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: namesOf('dismissedBy', 'dismissedReason', 'dismissedAt', 'pk'),
          ExpressionAttributeValues: { ':by': text(by), ':reason': text(reason), ':at': instant(this.clock.now()) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return response.Attributes ? toStreak(response.Attributes) : null;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return null;
      throw error;
    }
  }

  private async all(policy: string): Promise<AttentionItem[]> {
    const items: AttentionItem[] = [];
    for await (const item of partitionItems(this.client, this.table, partition(policy))) items.push(toStreak(item));
    return items;
  }
}
