import type * as z from 'zod';
import type { RetentionSpec } from '../core/retention.ts';
import type { Store } from '../core/store.ts';
import type { DataClass } from '../core/types.ts';
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
 * kinds" in its errors); createStore below and the deployment plan look kinds up here.
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

/** The policies whose store is of kind K. */
type PolicyOf<K extends StoreKind, P = StorePolicy> = P extends { store: infer S }
  ? [Extract<S, { kind: K }>] extends [never]
    ? never
    : Omit<P, 'store'> & { store: Extract<S, { kind: K }> }
  : never;

type OpenLinked = (store: StoreConfigOf<'blobs'>) => Promise<Store>;
type Factory<K extends StoreKind> = (policy: PolicyOf<K>, openLinked: OpenLinked) => Store;
type LoadedFactory<K extends StoreKind> = Awaited<ReturnType<Extract<Backend, { kind: K }>['load']>>;
/** The kinds whose factory takes every policy of its kind: all of them, or createStore does not compile. */
type FittingKind = { [K in StoreKind]: LoadedFactory<K> extends Factory<K> ? K : never }[StoreKind];

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
 * The CLI opens every store before running any policy and the engine opens it again at run start,
 * with the run's deadline: each store checks its backend once (S3: one listing under its prefix; a
 * billed Vercel Blob list call) and takes the deadline on every call. A failed check is not
 * remembered, so the next call checks again. Store code loads on first use, so a config of local
 * directories never loads a cloud SDK.
 */
export async function createStore(policy: StorePolicy): Promise<Store> {
  const kind: FittingKind = policy.store.kind;
  // The factory of the policy's own kind, which FittingKind shows takes it.
  const factory = (await storeBackend(kind).load()) as unknown as (
    policy: StorePolicy,
    openLinked: OpenLinked,
  ) => Store;
  const store = factory(policy, (linked) =>
    createStore({ name: policy.name, class: 'blobs', retention: policy.retention, store: linked }),
  );
  return store;
}

/**
 * The policy's store, opened outside a run for a read (verify, storage, lifecycle, a hold check),
 * handed to `use`, and closed whatever `use` does; a failing close never hides `use`'s outcome.
 */
export async function withOpenStore<T>(policy: StorePolicy, use: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore(policy);
  try {
    await store.open();
    return await use(store);
  } finally {
    await store.close().catch(() => undefined);
  }
}
