import type { ControlLoaders } from '../lib/control/descriptors.ts';
import { loadDynamoControl } from '../lib/control/dynamodb/load.ts';
import { loadPostgresControl } from '../lib/control/postgres/load.ts';

export const CONTROLS: ControlLoaders = { postgres: loadPostgresControl, dynamodb: loadDynamoControl };
