import * as z from 'zod';
import { checkRegion, DynamoIndexName, DynamoKeyAttribute, DynamoTableName, Endpoint } from '../../aws/schema.ts';

/**
 * The policy `store` entry of the `dynamodb` tokens store. Apart from store.ts so that
 * validating a config never loads the AWS SDK (as every backend's schema.ts).
 */
export const DynamoTokensStoreSchema = z
  .strictObject({
    kind: z.literal('dynamodb'),
    table: DynamoTableName,
    /** The table's key attribute names; open() checks them against the table. */
    key: z.strictObject({ partition: DynamoKeyAttribute, sort: DynamoKeyAttribute.optional() }),
    /**
     * Expiry in epoch seconds (the DynamoDB TTL convention). An item's timestamp is its expiry,
     * so the policy's retention is the grace period after expiry ("0s" is not allowed: use "1h").
     */
    expiresAttribute: DynamoKeyAttribute.default('expiresAt'),
    /**
     * A GSI whose sort key is the expiry attribute: pages are Queries of candidates only, oldest
     * first. `values`: every value its partition key takes (several when writes are sharded).
     * The index defines the policy's scope: items it does not hold are neither counted nor deleted.
     */
    index: z
      .strictObject({
        name: DynamoIndexName,
        partition: DynamoKeyAttribute,
        values: z.array(z.union([z.string().min(1), z.number()])).min(1),
      })
      .optional(),
    /** Without an index: parallel Scan segments, each read concurrently. */
    segments: z.number().int().min(1).max(1_000).default(4),
    /** Read capacity units per second that scans and censuses may consume on average; absent: no limit. */
    maxReadCapacityPerSecond: z.number().positive().optional(),
    /**
     * true: one DeleteItem per token, conditioned on its expiry still being past the cutoff, so a
     * token refreshed since the scan is kept. false: BatchWriteItem (25 per call), with no such
     * check: only for tables whose items' expiry never moves later (write-once tokens, deny lists).
     */
    conditional: z.boolean().default(true),
    /** DeleteItem calls (or BatchWriteItem calls, when not conditional) in flight at once. */
    deleteConcurrency: z.number().int().min(1).max(256).default(16),
    region: z.string().min(1).optional(),
    /** DynamoDB-compatible endpoint (dynalite, DynamoDB Local); absent: AWS. */
    endpoint: Endpoint.optional(),
  })
  .superRefine(checkRegion);

export type DynamoTokensStoreConfig = z.output<typeof DynamoTokensStoreSchema>;
