import type * as z from 'zod';
import type { ControlDescriptor, ControlOpener, ControlStoreOptions, OpenedControlStore } from '../core/backend.ts';
import { dynamodbControl } from './dynamodb/index.ts';
import { postgresControl } from './postgres/index.ts';

/**
 * Every control store kind, one line each (core/backend.ts says what a descriptor holds). The
 * config schema builds its `control` union from this list, in this order (the order of the
 * "known kinds" in its error); openControl below and the deployment plan look kinds up here.
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

export function controlBackend<K extends ControlKind>(kind: K): Extract<Backend, { kind: K }> {
  // A parsed config names registered kinds only.
  return CONTROL_BACKENDS.find((backend) => backend.kind === kind) as Extract<Backend, { kind: K }>;
}

/** Opens the configured control store (the default one when none is), loading its code first. */
export async function openControl(
  config: ControlConfig | undefined,
  options: ControlStoreOptions,
): Promise<OpenedControlStore> {
  if (!config) return (await DEFAULT_CONTROL.load())(undefined, options);
  // The opener of the config's own kind, whose schema parsed it.
  const open = (await controlBackend(config.kind).load()) as ControlOpener<ControlConfig>;
  return open(config, options);
}
