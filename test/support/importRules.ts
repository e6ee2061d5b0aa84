import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The import rules of lib/ (docs/tooling.md): every import is read with TypeScript's own parser,
 * so a dynamic `import()` or an `export … from` counts as much as a static import, and an import
 * quoted in a comment or a string does not count at all.
 */

export type ImportKind = 'import' | 'import type' | 'export from' | 'import()' | 'import type()';

/** One import: `to` is a repository path (`lib/core/types.ts`) or, for a package, its name (`zod`, `node:fs`). */
export interface ImportEdge {
  from: string;
  to: string;
  line: number;
  kind: ImportKind;
  package: boolean;
}

/** Every import of one source file; specifiers that are not literals (a user's config file) are not imports of lib/. */
export function importsOf(file: string, text: string): ImportEdge[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (specifier: ts.Node | undefined, kind: ImportKind, at: ts.Node): void => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    const line = source.getLineAndCharacterOfPosition(at.getStart(source)).line + 1;
    const relative = specifier.text.startsWith('.');
    const to = relative ? path.posix.join(path.posix.dirname(file), specifier.text) : packageName(specifier.text);
    edges.push({ from: file, to, line, kind, package: !relative });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node))
      add(node.moduleSpecifier, node.importClause?.isTypeOnly ? 'import type' : 'import', node);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, 'export from', node);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node.arguments[0], 'import()', node);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument))
      add(node.argument.literal, 'import type()', node);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** `@aws-sdk/client-s3` of `@aws-sdk/client-s3/dist/…`, `sst` of `sst/aws`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** The imports of every `.ts` file under `directory` (a repository path such as `lib`). */
export function readImportGraph(repositoryRoot: string, directory: string): ImportEdge[] {
  const files = readdirSync(path.join(repositoryRoot, directory), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.posix.join(directory, name.split(path.sep).join('/')))
    .sort();
  return files.flatMap((file) => importsOf(file, readFileSync(path.join(repositoryRoot, file), 'utf8')));
}

export interface ImportRules {
  /** The directory the rules are about: `lib`. */
  root: string;
  /**
   * Lowest first: the folders (`core`) and root files (`errors.ts`) of `root`, grouped. A file may
   * import from its own folder and from lower groups only; folders of one group are peers that
   * never import each other.
   */
  layers: string[][];
  /** Folders whose subfolders are backends (`stores`): a backend never imports another. */
  backendParents: string[];
  /** Packages `root` never imports, with the reason. */
  forbiddenPackages: Record<string, string>;
}

export interface ImportViolation {
  from: string;
  to: string;
  line: number;
  rule: string;
}

/** What breaks the rules: at most one violation per import, the most specific rule first. */
export function importViolations(edges: ImportEdge[], rules: ImportRules): ImportViolation[] {
  const layerOf = new Map(rules.layers.flatMap((units, index) => units.map((unit) => [unit, index] as const)));
  const inRoot = (file: string) => file.startsWith(`${rules.root}/`);
  // `stores` for lib/stores/fs/store.ts; `deps.ts` for lib/deps.ts.
  const unitOf = (file: string) => file.slice(rules.root.length + 1).split('/')[0]!;
  const backendOf = (file: string): string | undefined => {
    const [parent, backend, ...rest] = file.slice(rules.root.length + 1).split('/');
    return rules.backendParents.includes(parent!) && rest.length > 0 ? `${parent}/${backend}` : undefined;
  };
  const ruleBroken = (edge: ImportEdge): string | undefined => {
    if (edge.package) {
      if (!Object.hasOwn(rules.forbiddenPackages, edge.to)) return undefined;
      return `${rules.root}/ never imports ${edge.to} (${rules.forbiddenPackages[edge.to]})`;
    }
    if (!inRoot(edge.to)) return `${rules.root}/ imports only from ${rules.root}/ and packages`;
    const from = unitOf(edge.from);
    const to = unitOf(edge.to);
    const fromLayer = layerOf.get(from);
    const toLayer = layerOf.get(to);
    if (fromLayer === undefined)
      return `${rules.root}/${from} is in no layer (add it to the layers of the import rules)`;
    if (toLayer === undefined) return `${rules.root}/${to} is in no layer (add it to the layers of the import rules)`;
    if (from === to) {
      const [fromBackend, toBackend] = [backendOf(edge.from), backendOf(edge.to)];
      if (fromBackend && toBackend && fromBackend !== toBackend) {
        return `a backend folder never imports another backend folder (${fromBackend}/ → ${toBackend}/)`;
      }
      return undefined;
    }
    if (toLayer === fromLayer) return `${from} and ${to} are peers in one layer: they never import each other`;
    if (toLayer > fromLayer) {
      return `${from} may import only its own folder and lower layers (${lowerUnits(rules, fromLayer)}); ${to} is above it`;
    }
    return undefined;
  };
  return edges.flatMap((edge) => {
    if (!inRoot(edge.from)) return [];
    const rule = ruleBroken(edge);
    return rule ? [{ from: edge.from, to: edge.to, line: edge.line, rule }] : [];
  });
}

function lowerUnits(rules: ImportRules, layer: number): string {
  const units = rules.layers.slice(0, layer).flat();
  return units.length === 0 ? 'none' : units.join(', ');
}

/** An import the rules refuse but the code base has today, until the named fix lands. */
export interface KnownException {
  from: string;
  to: string;
  reason: string;
}

/** The violations no exception covers, and the exceptions that cover nothing any more (remove them). */
export function applyExceptions(
  violations: ImportViolation[],
  exceptions: KnownException[],
): { unexpected: ImportViolation[]; stale: KnownException[] } {
  const covers = (exception: KnownException, violation: ImportViolation) =>
    exception.from === violation.from && exception.to === violation.to;
  return {
    unexpected: violations.filter((violation) => !exceptions.some((exception) => covers(exception, violation))),
    stale: exceptions.filter((exception) => !violations.some((violation) => covers(exception, violation))),
  };
}

/** Import cycles between files, each as a path that ends where it starts (`a → b → a`); type imports count. */
export function importCycles(edges: ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to, package: external } of edges) {
    if (external) continue;
    next.set(from, (next.get(from) ?? new Set()).add(to));
  }
  return stronglyConnected(next)
    .filter((component) => component.length > 1 || next.get(component[0]!)?.has(component[0]!))
    .map((component) => shortestCycle(component.sort()[0]!, new Set(component), next));
}

/** Tarjan's strongly connected components. */
function stronglyConnected(next: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const target of next.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    components.push(component);
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** The shortest way from `start` back to itself inside its component (breadth first). */
function shortestCycle(start: string, component: Set<string>, next: Map<string, Set<string>>): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let at = 0; at < queue.length; at += 1) {
    const node = queue[at]!;
    for (const target of [...(next.get(node) ?? [])].sort()) {
      if (target === start) {
        const cycle = [start];
        for (let step: string | undefined = node; step !== start && step !== undefined; step = cameFrom.get(step)) {
          cycle.splice(1, 0, step);
        }
        return [...cycle, start];
      }
      if (component.has(target) && !cameFrom.has(target)) {
        cameFrom.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}
