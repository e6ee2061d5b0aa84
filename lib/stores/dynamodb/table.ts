import type { AttributeValue, TableDescription } from '@aws-sdk/client-dynamodb';
import type { DynamoItem } from '../../aws/dynamo.ts';
import { ConfigError } from '../../errors.ts';
import { indexLanes, type LaneReader, type Lanes, scanLanes, type TableLayout } from './read.ts';
import type { DynamoTokensStoreConfig } from './schema.ts';

/** What the tokens store knows about its table once open() has checked it. */
export interface OpenedTable {
  lanes: Lanes;
  codec: KeyCodec;
  /** Whether a page read can see this attribute (an index may not project it). */
  readable(attribute: string): boolean;
}

type KeyType = 'S' | 'N';

/** Item keys as strings, reversibly: reports and audit records name tokens by these. */
export interface KeyCodec {
  encode(item: DynamoItem): string;
  /** The DynamoDB key for `key`, or undefined when no item of this table can have it. */
  decode(key: string): DynamoItem | undefined;
}

function keyCodec(partition: { name: string; type: KeyType }, sort?: { name: string; type: KeyType }): KeyCodec {
  const text = (value: AttributeValue | undefined): string => value?.S ?? value?.N ?? '';
  const attribute = (type: KeyType, value: string): AttributeValue | undefined =>
    type === 'S' ? { S: value } : /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value) ? { N: value } : undefined;
  const keyOf = (partitionText: string, sortText?: string): DynamoItem | undefined => {
    const partitionValue = attribute(partition.type, partitionText);
    const sortValue = sort && sortText !== undefined ? attribute(sort.type, sortText) : undefined;
    if (!partitionValue || (sort && !sortValue)) return undefined;
    return { [partition.name]: partitionValue, ...(sort && sortValue ? { [sort.name]: sortValue } : {}) };
  };
  return {
    encode(item) {
      const partitionText = text(item[partition.name]);
      return sort
        ? `${partitionText.replace(/[\\#]/g, (char) => `\\${char}`)}#${text(item[sort.name])}`
        : partitionText;
    },
    decode(key) {
      if (!sort) return keyOf(key);
      let partitionText = '';
      for (let index = 0; index < key.length; index += 1) {
        const char = key[index]!;
        if (char === '#') return keyOf(partitionText, key.slice(index + 1));
        if (char === '\\') {
          index += 1;
          if (index >= key.length) return undefined;
          partitionText += key[index];
        } else partitionText += char;
      }
      return undefined;
    },
  };
}

/**
 * Checks the table is what the config says (key names and types, the index and what it
 * projects) and builds the readers: misconfiguration fails at open, not halfway through a run.
 */
export function checkTable(
  table: TableDescription,
  config: DynamoTokensStoreConfig,
  layout: TableLayout,
  reader: LaneReader,
  context: Record<string, unknown>,
): OpenedTable {
  const types = new Map(
    (table.AttributeDefinitions ?? []).map((definition) => [definition.AttributeName, definition.AttributeType]),
  );
  const keyName = (schema: typeof table.KeySchema, type: 'HASH' | 'RANGE') =>
    schema?.find((key) => key.KeyType === type)?.AttributeName;
  const [hash, range] = [keyName(table.KeySchema, 'HASH'), keyName(table.KeySchema, 'RANGE')];
  if (hash !== config.key.partition || range !== config.key.sort) {
    throw ConfigError.single(
      'store.key',
      `table ${config.table} has key { partition: "${hash}"${range ? `, sort: "${range}"` : ''} }`,
      'set store.key to match the table',
      context,
    );
  }
  const keyType = (name: string): KeyType => {
    const type = types.get(name);
    if (type !== 'S' && type !== 'N')
      throw ConfigError.single(
        'store.key',
        `key attribute "${name}" is of type ${type}`,
        'only string and number keys are supported',
        context,
      );
    return type;
  };
  const codec = keyCodec(
    { name: hash, type: keyType(hash) },
    range ? { name: range, type: keyType(range) } : undefined,
  );
  if (!config.index) return { lanes: scanLanes(reader, layout, config.segments), codec, readable: () => true };

  const { name, partition, values } = config.index;
  const index = table.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === name);
  if (!index)
    throw ConfigError.single(
      'store.index.name',
      `table ${config.table} has no global secondary index "${name}"`,
      'create it or remove store.index to scan',
      context,
    );
  if (
    keyName(index.KeySchema, 'HASH') !== partition ||
    keyName(index.KeySchema, 'RANGE') !== config.expiresAttribute ||
    types.get(config.expiresAttribute) !== 'N'
  ) {
    throw ConfigError.single(
      'store.index',
      `index ${name} must have partition key "${partition}" and the number sort key "${config.expiresAttribute}"`,
      'fix store.index or the index',
      context,
    );
  }
  const partitionType = types.get(partition);
  const laneValues = values.map((value, position) => {
    const text = String(value);
    if (partitionType === 'S') return { S: text };
    if (partitionType === 'N' && Number.isFinite(Number(text))) return { N: text };
    throw ConfigError.single(
      `store.index.values.${position}`,
      `"${text}" is not a value of the ${partitionType} attribute "${partition}"`,
      'list the values the index partition key takes',
      context,
    );
  });
  // Every index holds the table's and its own key attributes; other attributes only if projected.
  const projected = new Set([
    hash,
    ...(range ? [range] : []),
    partition,
    config.expiresAttribute,
    ...(index.Projection?.NonKeyAttributes ?? []),
  ]);
  const readable = (attribute: string) => index.Projection?.ProjectionType === 'ALL' || projected.has(attribute);
  return { lanes: indexLanes(reader, layout, { name, partition, values: laneValues }), codec, readable };
}
