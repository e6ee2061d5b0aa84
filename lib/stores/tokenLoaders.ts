import type { StoreLoaders } from './descriptors.ts';
import { loadDynamoTokensStore } from './dynamodb/load.ts';
import { loadPostgresTokensStore } from './postgres/loadTokens.ts';

/** The stores of class tokens. */
export const TOKEN_LOADERS = {
  tokens: { dynamodb: loadDynamoTokensStore, postgres: loadPostgresTokensStore },
} satisfies StoreLoaders;
