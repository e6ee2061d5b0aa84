import { type DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { isConditionalCheckFailed } from '../../aws/dynamo.ts';
import type { RunRecord } from '../../core/control.ts';
import type { RunReport } from '../../core/types.ts';
import { ControlStoreError } from '../../errors.ts';
import { indexPartition, keys, namesOf, num, runIdentity, storedReport, text, toRun } from './items.ts';
import { getItem, indexedItems, indexPartitionQuery } from './table.ts';

/** How many of a policy's latest runs the next live run looks through for crashed ones. */
const CRASH_LOOKBACK = 50;

/** Run history: one item per run, listed newest first through gsi1 (per policy) and gsi2 (all). */
export class DynamoRunHistory {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly ttlDays: number,
  ) {}

  async start(run: { runId: string; policy: string; dryRun: boolean; startedAt: Date }): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...keys.run(run.runId), ...runIdentity(run, this.ttlDays), status: text('running') },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: namesOf('pk'),
        }),
      );
    } catch (error) {
      // A duplicate run id is a bug upstream: fail before any deletion, as PostgreSQL's primary key does.
      if (isConditionalCheckFailed(error))
        throw new ControlStoreError(`run ${run.runId} was started before`, { runId: run.runId, policy: run.policy });
      throw error;
    }
  }

  /** An upsert, so a report is kept even if its start never reached the table. */
  async finish(report: RunReport): Promise<void> {
    const identity = runIdentity(
      { runId: report.runId, policy: report.policy, dryRun: report.dryRun, startedAt: new Date(report.startedAt) },
      this.ttlDays,
    );
    const keepFirst = Object.keys(identity).map((name) => `#${name} = if_not_exists(#${name}, :${name})`);
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: keys.run(report.runId),
        UpdateExpression: `SET #status = :status, #finishedAt = :finishedAt, #report = :report, ${keepFirst.join(', ')}`,
        ExpressionAttributeNames: namesOf('status', 'finishedAt', 'report', ...Object.keys(identity)),
        ExpressionAttributeValues: {
          ':status': text(report.status),
          ':finishedAt': num(Date.parse(report.finishedAt)),
          ':report': text(storedReport(report)),
          ...Object.fromEntries(Object.entries(identity).map(([name, value]) => [`:${name}`, value])),
        },
      }),
    );
  }

  /** Among the policy's latest runs (a crashed one is found by the next live run, so it is recent). */
  async closeCrashed(policy: string, exceptRunId: string, now: Date): Promise<string[]> {
    const crashed = (await this.list({ policy, limit: CRASH_LOOKBACK })).filter(
      (run) => run.status === 'running' && !run.dryRun && run.runId !== exceptRunId,
    );
    const closed: string[] = [];
    for (const run of crashed) {
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: keys.run(run.runId),
            UpdateExpression: 'SET #status = :crashed, #finishedAt = :now',
            ConditionExpression: '#status = :running',
            ExpressionAttributeNames: namesOf('status', 'finishedAt'),
            ExpressionAttributeValues: {
              ':crashed': text('crashed'),
              ':running': text('running'),
              ':now': num(now.getTime()),
            },
          }),
        );
        closed.push(run.runId);
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
    return closed;
  }

  async list(query: { policy?: string; limit: number }): Promise<RunRecord[]> {
    const runs: RunRecord[] = [];
    if (query.limit <= 0) return runs;
    const [index, partition] =
      query.policy === undefined
        ? (['gsi2', indexPartition.allRuns] as const)
        : (['gsi1', indexPartition.runsByPolicy(query.policy)] as const);
    for await (const item of indexedItems(
      this.client,
      indexPartitionQuery(this.table, index, partition, 'newest first', query.limit),
    )) {
      runs.push(toRun(item));
      if (runs.length >= query.limit) break;
    }
    return runs;
  }

  async get(runId: string): Promise<RunRecord | null> {
    const item = await getItem(this.client, this.table, keys.run(runId));
    return item ? toRun(item) : null;
  }
}
