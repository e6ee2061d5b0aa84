import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AuditCounter } from '../../core/auditCounts.ts';
import type { AuditCount, AuditCountQuery } from '../../core/control.ts';
import { indexPartition, toAuditRecord } from './items.ts';
import { indexedItems, indexPartitionQuery } from './table.ts';

/**
 * Writers' clocks may disagree: ids come from one counter, times from each writer's clock, so a
 * record may carry an earlier time than one written before it. The walk goes this far past
 * `from` before it stops; writers whose clocks differ by more would need a wider margin.
 */
export const CLOCK_SKEW_MARGIN_MS = 3_600_000;

/**
 * DynamoDB has no GROUP BY: the policy's records are read through its audit index (gsi1, id
 * order), newest first, and counted here. Only that policy's partition is queried, and the
 * walk stops one clock-skew margin before `from`: a report reads its period, not the policy's past.
 */
export async function countDynamoAudit(
  client: DynamoDBClient,
  table: string,
  query: AuditCountQuery,
): Promise<AuditCount[]> {
  const counter = new AuditCounter(query);
  const stopBefore = query.from.getTime() - CLOCK_SKEW_MARGIN_MS;
  const records = indexedItems(
    client,
    indexPartitionQuery(table, 'gsi1', indexPartition.auditByPolicy(query.policy), 'newest first'),
  );
  for await (const item of records) {
    const record = toAuditRecord(item);
    if (record.createdAt.getTime() < stopBefore) break;
    counter.add(record);
  }
  return counter.counts();
}
