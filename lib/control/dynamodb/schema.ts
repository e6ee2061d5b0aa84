import * as z from 'zod';
import { checkRegion, DynamoTableName, Endpoint } from '../../aws/schema.ts';

/**
 * The `control` config entry for the DynamoDB control store. Apart from dynamo.ts so that
 * validating a config never loads the AWS SDK.
 */
export const DynamoControlSchema = z
  .strictObject({
    kind: z.literal('dynamodb'),
    /** The control table; `migrate` creates it (PAY_PER_REQUEST) if missing. */
    table: DynamoTableName,
    region: z.string().min(1).optional(),
    /** DynamoDB-compatible endpoint (dynalite, DynamoDB Local); absent: AWS. */
    endpoint: Endpoint.optional(),
  })
  .superRefine(checkRegion);

export type DynamoControlConfig = z.output<typeof DynamoControlSchema>;
