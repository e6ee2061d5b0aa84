import type { PolicyConfig, StoreConfig, StoreKind } from '../config/schema.ts';
import { createFsStore } from './fs.ts';
import type { Store } from './types.ts';

/**
 * Every store kind, one line each: a new backend is its file plus a line here (and its schema in
 * config/schema.ts). `satisfies` makes a missing kind a type error.
 */
type Factory<K extends StoreKind> = (config: Extract<StoreConfig, { kind: K }>) => Store;

const factories = {
  fs: createFsStore,
} satisfies { [K in StoreKind]: Factory<K> };

export function createStore(policy: PolicyConfig): Store {
  const factory = factories[policy.store.kind] as Factory<StoreKind>;
  return factory(policy.store);
}
