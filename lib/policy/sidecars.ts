import type { Problem } from '../core/issues.ts';

/**
 * Sidecar files of an `fs` store (`photo.json` beside `photo.jpg`), as declared in its config:
 * `{ pattern: "*.json", mainFile: "*.jpg" }`. Each pattern has exactly one `*`, which stands for
 * the same text (the stem) in both: `a/b.json` is the sidecar of `a/b.jpg`. The stem may hold
 * `/`, so `meta/*.json` → `photos/*.jpg` pairs files in different directories. Pure: the config
 * validates patterns with it and `retention reconcile` finds each sidecar's main files with it.
 */
export interface SidecarRule {
  /** The sidecar's key, relative to the root, with one `*`. */
  pattern: string;
  /** Its main file(s): the sidecar is orphaned when none of them exists. */
  mainFile: string | string[];
}

/** What is wrong with one pattern (sidecar or main file), or undefined. */
export function sidecarPatternProblem(pattern: string): Problem | undefined {
  const stars = pattern.split('*').length - 1;
  if (stars !== 1)
    return {
      message: `"${pattern}" has ${stars} "*" (needs exactly one: the part shared with the other file)`,
      fix: 'e.g. "*.json" for the sidecar and "*.jpg" for its main file',
    };
  if (/[?[\]{}!]/.test(pattern))
    return { message: `"${pattern}" uses glob syntax other than "*"`, fix: 'use one "*" and literal text around it' };
  if (pattern === '*')
    return {
      message: '"*" alone would make every file a sidecar',
      fix: 'add the fixed part, e.g. "*.json"',
    };
  if (pattern.startsWith('/') || pattern.split('/').includes('..'))
    return {
      message: `"${pattern}" leaves the root (absolute, or a ".." segment)`,
      fix: 'patterns match keys relative to the root',
    };
  return undefined;
}

/** The main-file keys of `key` when it is a sidecar under one of `rules` (first match), else undefined. */
export function mainFilesOf(key: string, rules: readonly SidecarRule[]): string[] | undefined {
  for (const rule of rules) {
    const [prefix, suffix] = rule.pattern.split('*') as [string, string];
    if (key.length < prefix.length + suffix.length || !key.startsWith(prefix) || !key.endsWith(suffix)) continue;
    const stem = key.slice(prefix.length, key.length - suffix.length);
    // A stem that would make a file its own main file (patterns like "a*" and "*a") pairs nothing.
    const mains = mainPatterns(rule)
      .map((main) => main.replace('*', () => stem))
      .filter((main) => main !== key);
    if (mains.length > 0) return mains;
  }
  return undefined;
}

export function mainPatterns(rule: SidecarRule): string[] {
  return typeof rule.mainFile === 'string' ? [rule.mainFile] : rule.mainFile;
}
