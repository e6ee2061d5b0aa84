import type * as z from 'zod';
import type { ControlDescriptor, ControlOpener, ControlStoreOptions, OpenedControlStore } from '../core/backend.ts';
import { ConfigError } from '../errors.ts';
import { dynamodbControl } from './dynamodb/index.ts';
import { postgresControl } from './postgres/index.ts';

/**
 * Every control store kind, one line each (core/backend.ts says what a descriptor holds). The
 * config schema builds its `control` union from this list, in this order (the order of the
 * "known kinds" in its error); the deployment plan looks kinds up here. No control store code:
 * that comes with the loaders (registry.ts lists them all; a deployed function carries its own).
 */
export const CONTROL_BACKENDS = [postgresControl, dynamodbControl] as const;

type Backend = (typeof CONTROL_BACKENDS)[number];
export type ControlKind = Backend['kind'];
/** The config's `control` entry, as parsed. */
export type ControlConfig = z.output<Backend['schema']>;

/** The kind that serves when the config names no control store: its descriptor takes `undefined`. */
export const DEFAULT_CONTROL: ControlDescriptor<
  Extract<ControlConfig, { kind: 'postgres' }>,
  undefined
> = postgresControl;

type Unconfigured<K extends ControlKind> = K extends typeof DEFAULT_CONTROL.kind ? undefined : never;

/** Loads the code of control kind K; resolves to its opener (the default kind's takes `undefined`). */
export type ControlLoader<K extends ControlKind> = () => Promise<
  ControlOpener<Extract<ControlConfig, { kind: K }>, Unconfigured<K>>
>;
/** The control loaders a bundle carries, by kind. */
export type ControlLoaders = { [K in ControlKind]?: ControlLoader<K> };

export function controlBackend<K extends ControlKind>(kind: K): Extract<Backend, { kind: K }> {
  // A parsed config names registered kinds only.
  return CONTROL_BACKENDS.find((backend) => backend.kind === kind) as Extract<Backend, { kind: K }>;
}

/**
 * Opens the configured control store (the default one when none is) with the loader of its kind,
 * loading its code first. A kind the bundle does not carry is refused before anything is opened.
 */
export async function openControlWith(
  loaders: ControlLoaders,
  config: ControlConfig | undefined,
  options: ControlStoreOptions,
): Promise<OpenedControlStore> {
  const kind = config?.kind ?? DEFAULT_CONTROL.kind;
  const load = loaders[kind] as ControlLoader<ControlKind> | undefined;
  if (!load) {
    throw ConfigError.single(
      'control.kind',
      `control store kind "${kind}" is not in this function's code (it has: ${Object.keys(loaders).join(', ')})`,
      'deploy the config with `npx sst deploy`, which bundles the control store its control entry names',
    );
  }
  // The opener of the config's own kind, whose schema parsed it.
  const open = (await load()) as ControlOpener<ControlConfig | undefined>;
  return open(config, options);
}
