import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The control table's definition, apart from its migration (table.ts) so that planning a
 * deployment reads it without loading the SDK (the import below is a type). Every key attribute
 * is a string; the four indexes are overloaded by item type (layout in dynamo.ts).
 * Infrastructure code that declares the table itself (sst.config.ts) must declare exactly this:
 * `migrate()` checks it.
 */
export const CONTROL_TTL_ATTRIBUTE = 'expiresAt';

interface IndexDefinition {
  name: string;
  partition: string;
  sort?: string;
}

/**
 * Every index projects keys only: an index entry is then written when an item enters or leaves
 * the index, not each time a projected attribute changes (a resolution rewrites the record's
 * status). Readers fetch the records themselves with strongly consistent BatchGetItem calls,
 * which also means a record read through an index always shows its current state.
 */
const CONTROL_INDEXES: IndexDefinition[] = [
  { name: 'gsi1', partition: 'gsi1pk', sort: 'gsi1sk' },
  { name: 'gsi2', partition: 'gsi2pk', sort: 'gsi2sk' },
  { name: 'gsi3', partition: 'gsi3pk', sort: 'gsi3sk' },
  { name: 'gsi4', partition: 'gsi4pk' },
];

export function controlTableDefinition(table: string): CreateTableCommandInput {
  const keyAttributes = [
    'pk',
    'sk',
    ...CONTROL_INDEXES.flatMap((index) => [index.partition, ...(index.sort ? [index.sort] : [])]),
  ];
  return {
    TableName: table,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: keyAttributes.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: CONTROL_INDEXES.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partition, KeyType: 'HASH' },
        ...(index.sort ? [{ AttributeName: index.sort, KeyType: 'RANGE' as const }] : []),
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    })),
  };
}
