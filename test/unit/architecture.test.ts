import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  applyExceptions,
  type ImportEdge,
  type ImportRules,
  type ImportViolation,
  importCycles,
  importsOf,
  importViolations,
  type KnownException,
  readImportGraph,
} from '../support/importRules.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The layers of lib/ (docs/architecture.md), lowest first. Where the layout puts folders in one
 * layer but one of them uses another, they are split here, the user above: errors.ts redacts
 * with redact.ts and appends remedies.ts's remedies, engine/restore.ts reads the audit trail of reports/, and the CLI seeds the demo
 * (demo/), invokes the deployed handlers with their payloads (serverless/) and serves the API (server/) and runs the scheduler (daemon/);
 * the cloud API function (serverless/) serves the API of server/.
 */
const LIB_RULES: ImportRules = {
  root: 'lib',
  layers: [
    ['redact.ts', 'remedies.ts'],
    ['errors.ts'],
    // The vocabulary: imports nothing of lib/ but errors.ts (with its redact.ts and remedies.ts).
    ['core'],
    ['policy'],
    ['sql', 'aws'],
    ['stores', 'control'],
    ['config'],
    ['observe'],
    ['disk'],
    ['reports'],
    ['engine'],
    ['deps.ts'],
    ['demo', 'server', 'daemon'],
    // The cloud API (serverless/apiHandler.ts) serves server/'s app.
    ['serverless'],
    ['cli'],
  ],
  backendParents: ['stores', 'control'],
  forbiddenPackages: { sst: 'only functions/ and sst.config.ts do: lib/ runs outside SST too' },
};

/** The one list of imports the rules refuse that the code base still has; each says why and until when. */
const KNOWN_EXCEPTIONS: KnownException[] = [];

const describeViolation = (violation: ImportViolation) =>
  `${violation.from}:${violation.line} → ${violation.to}: ${violation.rule}`;

describe('import rules of lib/', () => {
  const edges = readImportGraph(ROOT, 'lib');
  const { unexpected, stale } = applyExceptions(importViolations(edges, LIB_RULES), KNOWN_EXCEPTIONS);

  it('reads the imports of every file, dynamic ones included', () => {
    expect(new Set(edges.map((edge) => edge.from)).size).toBeGreaterThan(100);
    expect(edges).toContainEqual(
      expect.objectContaining({ from: 'lib/stores/fs/load.ts', to: 'lib/stores/fs/store.ts', kind: 'import()' }),
    );
  });

  it('no import goes up a layer, across peers or between backends, and none imports sst', () => {
    expect(unexpected.map(describeViolation)).toEqual([]);
  });

  it('every known exception is still needed (remove the ones that are not)', () => {
    expect(stale).toEqual([]);
  });

  it('no import cycles between files', () => {
    expect(importCycles(edges).map((cycle) => cycle.join(' → '))).toEqual([]);
  });
});

describe('the import rules catch what they are for', () => {
  const edge = (from: string, to: string, line = 1): ImportEdge => ({
    from,
    to,
    line,
    kind: 'import',
    package: !to.includes('.ts'),
  });

  it('reads static, type, re-export and dynamic imports, not quoted ones', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../b.ts';",
      "export { c } from './c.ts';",
      "export * from '@aws-sdk/client-s3/dist-types/index.js';",
      "const d = await import('./d.ts');",
      "type E = import('./e.ts').E;",
      'const config = await import(userPath);',
      "// import('./commented.ts')",
      'const text = "import { x } from \'./quoted.ts\'";',
      "import 'sst/aws';",
    ].join('\n');
    expect(importsOf('lib/x/y.ts', text).map(({ to, kind, line }) => [line, kind, to])).toEqual([
      [1, 'import', 'lib/x/a.ts'],
      [2, 'import type', 'lib/b.ts'],
      [3, 'export from', 'lib/x/c.ts'],
      [4, 'export from', '@aws-sdk/client-s3'],
      [5, 'import()', 'lib/x/d.ts'],
      [6, 'import type()', 'lib/x/e.ts'],
      [10, 'import', 'sst'],
    ]);
  });

  it('names the file, the import and the rule it breaks', () => {
    const fake = [
      edge('lib/core/types.ts', 'lib/engine/run.ts', 3),
      edge('lib/stores/fs/store.ts', 'lib/stores/s3/objects.ts'),
      edge('lib/stores/common.ts', 'lib/control/common.ts'),
      edge('lib/engine/run.ts', 'sst'),
      edge('lib/engine/run.ts', 'test/support/runs.ts'),
      edge('lib/gateway/api.ts', 'lib/core/types.ts'),
      // Allowed: its own folder, lower layers, packages, the registry loading its backends.
      edge('lib/engine/run.ts', 'lib/engine/sweep.ts'),
      edge('lib/engine/run.ts', 'lib/core/types.ts'),
      edge('lib/core/types.ts', 'lib/errors.ts'),
      edge('lib/core/retention.ts', 'zod'),
      edge('lib/stores/registry.ts', 'lib/stores/fs/store.ts'),
    ];
    expect(importViolations(fake, LIB_RULES).map(describeViolation)).toEqual([
      'lib/core/types.ts:3 → lib/engine/run.ts: core may import only its own folder and lower layers (redact.ts, remedies.ts, errors.ts); engine is above it',
      'lib/stores/fs/store.ts:1 → lib/stores/s3/objects.ts: a backend folder never imports another backend folder (stores/fs/ → stores/s3/)',
      'lib/stores/common.ts:1 → lib/control/common.ts: stores and control are peers in one layer: they never import each other',
      'lib/engine/run.ts:1 → sst: lib/ never imports sst (only functions/ and sst.config.ts do: lib/ runs outside SST too)',
      'lib/engine/run.ts:1 → test/support/runs.ts: lib/ imports only from lib/ and packages',
      'lib/gateway/api.ts:1 → lib/core/types.ts: lib/gateway is in no layer (add it to the layers of the import rules)',
    ]);
  });

  it('lets an exception through only where it matches, and reports one that matches nothing', () => {
    const violations = importViolations(
      [edge('lib/stores/registry.ts', 'lib/config/schema.ts'), edge('lib/stores/common.ts', 'lib/config/load.ts')],
      LIB_RULES,
    );
    const excused: KnownException = { from: 'lib/stores/registry.ts', to: 'lib/config/schema.ts', reason: 'a test' };
    const gone: KnownException = { from: 'lib/policy/sla.ts', to: 'lib/engine/run.ts', reason: 'fixed long ago' };
    const { unexpected, stale } = applyExceptions(violations, [excused, gone]);
    expect(unexpected.map((violation) => violation.to)).toEqual(['lib/config/load.ts']);
    expect(stale).toEqual([gone]);
  });

  it('reports each cycle as a path back to its start, type imports included', () => {
    const fake: ImportEdge[] = [
      edge('lib/engine/run.ts', 'lib/engine/sweep.ts'),
      edge('lib/engine/sweep.ts', 'lib/engine/fence.ts'),
      edge('lib/engine/fence.ts', 'lib/engine/run.ts'),
      edge('lib/engine/sweep.ts', 'lib/core/types.ts'),
      { ...edge('lib/core/types.ts', 'lib/core/store.ts'), kind: 'import type' },
      { ...edge('lib/core/store.ts', 'lib/core/types.ts'), kind: 'import type' },
      edge('lib/policy/sla.ts', 'lib/policy/sla.ts'),
      edge('lib/policy/plan.ts', 'zod'),
    ];
    expect(importCycles(fake).map((cycle) => cycle.join(' → '))).toEqual([
      'lib/core/store.ts → lib/core/types.ts → lib/core/store.ts',
      'lib/engine/fence.ts → lib/engine/run.ts → lib/engine/sweep.ts → lib/engine/fence.ts',
      'lib/policy/sla.ts → lib/policy/sla.ts',
    ]);
  });
});
