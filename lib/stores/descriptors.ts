import type * as z from 'zod';
import type { RetentionSpec } from '../core/retention.ts';
import type { Store } from '../core/store.ts';
import type { DataClass } from '../core/types.ts';
import { ConfigError } from '../errors.ts';
import type { CompressFormat } from '../policy/compress.ts';
import { dynamodbBackend } from './dynamodb/index.ts';
import { fsBackend } from './fs/index.ts';
import { postgresBackend } from './postgres/index.ts';
import type { RowsStoreConfig } from './postgres/schema.ts';
import { s3Backend } from './s3/index.ts';
import { vercelBlobBackend } from './vercel-blob/index.ts';

/**
 * Every store kind, one line each (core/backend.ts says what a descriptor holds). The config
 * schema builds its per-class unions from this list, in this order (the order of the "known
 * kinds" in its errors); the deployment plan looks kinds up here. No store code: that comes with
 * the loaders (blobLoaders.ts, rowLoaders.ts, tokenLoaders.ts; all of them in registry.ts).
 */
export const STORE_BACKENDS = [fsBackend, s3Backend, vercelBlobBackend, dynamodbBackend, postgresBackend] as const;

type Backend = (typeof STORE_BACKENDS)[number];
export type StoreKind = Backend['kind'];

/** The schemas of a policy's `store` for one data class: one per backend serving it. */
type ClassSchema<C extends DataClass, B = Backend> = B extends { classes: { [K in C]: { schema: infer S } } }
  ? S
  : never;

/** A policy's `store`, as parsed, for one data class. */
export type StoreConfigOf<C extends DataClass> = z.output<ClassSchema<C>>;
export type StoreConfig = StoreConfigOf<'blobs'> | StoreConfigOf<'tokens'> | StoreConfigOf<'rows'>;

interface PolicyBase {
  name: string;
  retention: RetentionSpec;
}

/**
 * What the factories read of a policy (a parsed policy is one). Rows policies carry the fields
 * of their table; only PostgreSQL serves them, so its schema types them.
 */
export type StorePolicy =
  | (PolicyBase & { class: 'blobs'; store: StoreConfigOf<'blobs'>; compress?: { format: CompressFormat } })
  | (PolicyBase & { class: 'tokens'; store: StoreConfigOf<'tokens'> })
  | ({ class: 'rows' } & Omit<RowsStoreConfig<StoreConfigOf<'blobs'>>, 'store'> & { store: StoreConfigOf<'rows'> });

/** The policies of class C whose store is of kind K. */
type PolicyOf<C extends DataClass, K extends StoreKind, P = StorePolicy> = P extends { class: C; store: infer S }
  ? Omit<P, 'store'> & { store: Extract<S, { kind: K }> }
  : never;

type OpenLinked = (store: StoreConfigOf<'blobs'>) => Promise<Store>;

/** The kinds serving a data class. */
type KindServing<C extends DataClass> = Extract<Backend, { classes: Record<C, unknown> }>['kind'];

/**
 * Loads the code of kind K for class C (core/backend.ts): resolves to a factory that takes every
 * policy of that class and kind, or the loader tables do not compile.
 */
export type StoreLoader<C extends DataClass, K extends StoreKind> = () => Promise<
  (policy: PolicyOf<C, K>, openLinked: OpenLinked) => Store
>;

/** The loaders a bundle carries, by class and kind. */
export type StoreLoaders = { [C in DataClass]?: { [K in KindServing<C>]?: StoreLoader<C, K> } };
/** Every class, every kind serving it: what the CLI and the local server carry (registry.ts). */
export type AllStoreLoaders = { [C in DataClass]: { [K in KindServing<C>]: StoreLoader<C, K> } };

export function storeBackend<K extends StoreKind>(kind: K): Extract<Backend, { kind: K }> {
  // A parsed config names registered kinds only.
  return STORE_BACKENDS.find((backend) => backend.kind === kind) as Extract<Backend, { kind: K }>;
}

type Serving<C extends DataClass> = Extract<Backend, { classes: Record<C, unknown> }>;

/** The backends serving a data class, in registry order. */
export function backendsServing<C extends DataClass>(dataClass: C): Array<Serving<C>> {
  return STORE_BACKENDS.filter((backend) => dataClass in backend.classes) as Array<Serving<C>>;
}

/** The schemas of a policy's `store` for a data class, in registry order. */
export function classSchemas<C extends DataClass>(dataClass: C): Array<ClassSchema<C>> {
  return backendsServing(dataClass).map(
    (backend) => (backend.classes as Record<C, { schema: ClassSchema<C> }>)[dataClass].schema,
  );
}

/**
 * Builds the policy's store with the loader of its class and kind (a rows policy's linked files:
 * of class blobs), loading its code first. A kind the bundle does not carry is refused before
 * anything is touched: a deployed function carries the loaders of its own class only.
 */
export async function openStore(loaders: StoreLoaders, policy: StorePolicy, at = 'store'): Promise<Store> {
  const kind = policy.store.kind;
  const byKind = loaders[policy.class] as Record<string, StoreLoader<DataClass, StoreKind> | undefined> | undefined;
  const load = byKind?.[kind];
  if (!load) {
    const carried = Object.keys(byKind ?? {}).join(', ') || 'none';
    throw ConfigError.single(
      `${at}.kind`,
      `a ${policy.class} store of kind "${kind}" is not in this function's code (it has: ${carried})`,
      `run the policy in the ${policy.class} function, or with the CLI`,
      { policy: policy.name },
    );
  }
  // The loader of the policy's own class and kind, which StoreLoader shows takes it.
  const factory = (await load()) as unknown as (policy: StorePolicy, openLinked: OpenLinked) => Store;
  return factory(policy, (linked) =>
    openStore(loaders, { name: policy.name, class: 'blobs', retention: policy.retention, store: linked }, 'blob.store'),
  );
}
