import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseOrThrow } from '../core/issues.ts';
import { ConfigError, describeCause } from '../errors.ts';
import { checkFsRoots, type RootContext } from './roots.ts';
import { Config, type RetentionConfig, type RetentionConfigInput } from './schema.ts';

/** Typed helper for `retention.config.ts`: `export default defineConfig({ policies: [...] })`. */
export function defineConfig(config: RetentionConfigInput): RetentionConfigInput {
  return config;
}

export const DEFAULT_CONFIG_FILES = ['retention.config.ts', 'retention.config.js', 'retention.config.json'];

/** Validates a parsed document; throws ConfigError with every bad field path. */
export function parseConfig(document: unknown): RetentionConfig {
  return parseOrThrow(Config, document);
}

/**
 * Loads `file` (JSON, or a TS/JS module whose default export is the config), or the first
 * default file in `cwd`, and checks its fs roots on disk against the config file, the backup
 * directories and the tool's own directories when given (lib/config/roots.ts). Nothing is
 * touched before this returns.
 */
export async function loadConfig(
  file: string | undefined,
  cwd = process.cwd(),
  guards: Omit<RootContext, 'configFile'> = {},
): Promise<{ config: RetentionConfig; source: string }> {
  const source = file ? path.resolve(cwd, file) : await findDefault(cwd);
  const config = parseConfig(await readDocument(source));
  await checkFsRoots(config, { configFile: source, ...guards });
  return { config, source };
}

async function findDefault(cwd: string): Promise<string> {
  for (const name of DEFAULT_CONFIG_FILES) {
    const candidate = path.join(cwd, name);
    try {
      await access(candidate);
      return candidate;
    } catch {
      // try the next name
    }
  }
  throw ConfigError.single(
    '--config',
    `no config file given and none of ${DEFAULT_CONFIG_FILES.join(', ')} in ${cwd}`,
    'pass --config <file.json|file.ts>',
  );
}

async function readDocument(source: string): Promise<unknown> {
  if (source.endsWith('.json')) {
    let text: string;
    try {
      text = await readFile(source, 'utf8');
    } catch (cause) {
      throw ConfigError.single('--config', `cannot read ${source}: ${describeCause(cause)}`, 'check the path');
    }
    try {
      return JSON.parse(text);
    } catch (cause) {
      throw ConfigError.single(
        '--config',
        `${source} is not valid JSON: ${describeCause(cause)}`,
        'fix the JSON syntax',
      );
    }
  }
  try {
    await access(source);
  } catch {
    throw ConfigError.single('--config', `${source} does not exist`, 'check the path');
  }
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(source).href)) as { default?: unknown };
  } catch (cause) {
    throw ConfigError.single(
      '--config',
      `cannot load ${source}: ${describeCause(cause)}`,
      'fix the error in the module',
    );
  }
  if (module.default === undefined) {
    throw ConfigError.single(
      '--config',
      `${source} has no default export`,
      'export default defineConfig({ policies: [...] })',
    );
  }
  return module.default;
}
