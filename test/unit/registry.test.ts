import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import type { RetentionConfigInput } from '../../lib/config/schema.ts';
import { CONTROL_BACKENDS, type ControlKind, controlBackend, DEFAULT_CONTROL } from '../../lib/control/registry.ts';
import type { AwsScope, ControlAccess, Grant, Refusal, StoreUse } from '../../lib/core/backend.ts';
import type { DataClass } from '../../lib/core/types.ts';
import { openControlStore } from '../../lib/deps.ts';
import { ConfigError } from '../../lib/errors.ts';
import { type DeploymentPlan, planDeployment } from '../../lib/serverless/deployment.ts';
import { createStore, STORE_BACKENDS, type StoreKind, storeBackend } from '../../lib/stores/registry.ts';
import { startDynalite, type TestDynamo } from '../support/dynalite.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';

/**
 * Every registered backend is reachable everywhere a kind is chosen: the config schema parses it
 * (and names it among the known kinds), the factory loads its code and builds it, and the
 * deployment plan grants what its descriptor says. The cases are keyed by kind, so a new backend
 * does not compile here until it has its own.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONTEXT = { app: 'app', stage: 'test', region: 'eu-west-1', accountId: '123456789012' };
const AWS: AwsScope = { region: CONTEXT.region, accountId: CONTEXT.accountId };
const COMMON = { retention: '30d', schedule: '0 3 * * *' } as const;

type PolicyInput = RetentionConfigInput['policies'][number];
type ControlInput = NonNullable<RetentionConfigInput['control']>;

/** What a data-class function is granted for a policy on the kind: its actions and own secrets, or a refusal. */
type Expected = { actions: string[]; secrets: string[] } | 'refused';
interface StoreCase {
  /** A minimal valid policy of the class on the kind. */
  policy: PolicyInput;
  granted: Expected;
}

const blobs = (store: Record<string, unknown>) => ({ name: 'files', class: 'blobs', ...COMMON, store }) as PolicyInput;
const tokens = (store: Record<string, unknown>) =>
  ({ name: 'sessions', class: 'tokens', ...COMMON, store }) as PolicyInput;
const rows = (store: Record<string, unknown>) =>
  ({ name: 'events', class: 'rows', ...COMMON, store, table: 'events', timestamp: 'created_at' }) as PolicyInput;
const NOTHING: Expected = { actions: [], secrets: [] };

const STORE_CASES: Record<StoreKind, Partial<Record<DataClass, StoreCase>>> = {
  fs: { blobs: { policy: blobs({ kind: 'fs', root: '/srv/scratch' }), granted: 'refused' } },
  s3: {
    blobs: {
      policy: blobs({ kind: 's3', bucket: 'docs', region: 'eu-west-1' }),
      granted: {
        actions: ['s3:ListBucket', 's3:DeleteObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention'],
        secrets: [],
      },
    },
  },
  'vercel-blob': {
    blobs: { policy: blobs({ kind: 'vercel-blob' }), granted: { actions: [], secrets: ['blobToken'] } },
  },
  dynamodb: {
    tokens: {
      policy: tokens({ kind: 'dynamodb', table: 'sessions', key: { partition: 'id' } }),
      granted: {
        actions: ['dynamodb:DescribeTable', 'dynamodb:BatchGetItem', 'dynamodb:Scan', 'dynamodb:DeleteItem'],
        secrets: [],
      },
    },
  },
  postgres: {
    rows: { policy: rows({ kind: 'postgres', url: 'postgres://app@db/app' }), granted: NOTHING },
    tokens: { policy: tokens({ kind: 'postgres', url: 'postgres://app@db/app', table: 'grants' }), granted: NOTHING },
  },
};

const storeCases = STORE_BACKENDS.flatMap((backend) =>
  Object.entries(STORE_CASES[backend.kind]).map(([dataClass, entry]) => ({ kind: backend.kind, dataClass, ...entry })),
);
const DATA_CLASSES: DataClass[] = ['blobs', 'rows', 'tokens'];

/** The function of a data class or health in a plan, without the self-invoke every data-class function gets. */
function grantedTo(plan: DeploymentPlan, role: string) {
  const found = plan.functions.find((candidate) => candidate.role === role);
  if (!found) throw new Error(`no ${role} function in the plan`);
  return {
    ...found,
    permissions: found.permissions.filter((statement) => !statement.actions.includes('lambda:InvokeFunction')),
  };
}

function configError(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('no ConfigError');
}

describe('every registered store kind', () => {
  it('has a case for each data class it serves, and no other', () => {
    for (const backend of STORE_BACKENDS) {
      expect(Object.keys(STORE_CASES[backend.kind]).sort(), backend.kind).toEqual(Object.keys(backend.classes).sort());
    }
    expect(new Set(STORE_BACKENDS.map((backend) => backend.kind)).size).toBe(STORE_BACKENDS.length);
  });

  it.each(storeCases)('$kind ($dataClass): the config schema parses a policy on it', ({ kind, dataClass, policy }) => {
    const parsed = parseConfig({ policies: [policy] }).policies[0]!;
    expect([parsed.class, parsed.store.kind]).toEqual([dataClass, kind]);
  });

  it.each(DATA_CLASSES)('an unknown kind for class %s is refused, naming every kind that serves it', (dataClass) => {
    const serving = STORE_BACKENDS.filter((backend) => dataClass in backend.classes).map((backend) => backend.kind);
    const policy = Object.values(STORE_CASES).flatMap((entry) => entry[dataClass]?.policy ?? [])[0]!;
    const error = configError(() =>
      parseConfig({ policies: [{ ...policy, store: { kind: 'ftp' } } as unknown as PolicyInput] }),
    );
    const issue = error.issues.find((candidate) => candidate.path === 'policies[0].store.kind');
    // Several backends: "unknown store kind (known for class …: a, b)"; one: its own "use one of".
    const known =
      serving.length > 1
        ? { message: `unknown store kind (known for class "${dataClass}": ${serving.join(', ')})` }
        : {
            message: '"ftp" is not one of the choices',
            fix: `use one of: ${serving.map((kind) => `"${kind}"`).join(', ')}`,
          };
    expect(issue).toMatchObject(known);
  });

  it.each(storeCases)(
    '$kind ($dataClass): createStore loads its code and builds a store of that kind',
    async ({ kind, policy }) => {
      const store = await createStore(parseConfig({ policies: [policy] }).policies[0]!);
      expect(store.kind).toBe(kind);
      await store.close?.();
    },
  );

  it.each(storeCases)(
    '$kind ($dataClass): the deployment plan grants what its descriptor says',
    ({ kind, dataClass, policy, granted }) => {
      const config = parseConfig({ policies: [policy] });
      // The descriptor's own grant, which the plan must carry (or refuse with) as it is.
      const grant = storeBackend(kind).deployment.grant as (store: unknown, use: StoreUse) => Grant | Refusal;
      const described = grant(config.policies[0]!.store, { aws: AWS, policy: policy.name });
      if (granted === 'refused' || 'refused' in described) {
        expect([granted, 'refused' in described]).toEqual(['refused', true]);
        const { refused } = described as Refusal;
        const error = configError(() => planDeployment(config, CONTEXT));
        expect(error.issues).toEqual([{ ...refused, path: `policies[0].${refused.path}` }]);
        return;
      }
      const fn = grantedTo(planDeployment(config, CONTEXT), dataClass);
      expect(fn.permissions).toEqual(described.statements);
      expect(fn.permissions.flatMap((statement) => statement.actions)).toEqual(granted.actions);
      // Beside the store's: the default control store's URL and Sentry's DSN, which every data-class function gets.
      expect(fn.secrets.filter((secret) => secret !== 'databaseUrl' && secret !== 'sentryDsn')).toEqual(
        granted.secrets,
      );
    },
  );
});

/** A control store per kind on a real local server: PostgreSQL (embedded) and DynamoDB (dynalite). */
let postgres: TestPostgres;
let dynamo: TestDynamo;

interface ControlCase {
  /** A minimal valid `control` entry, as deployed. */
  minimal: ControlInput;
  /** One on the local server, for opening. */
  local: () => Promise<ControlInput>;
  location: RegExp;
  /** Actions of the health function (read-only) on the control store. */
  reads: string[];
}

const CONTROL_CASES: Record<ControlKind, ControlCase> = {
  postgres: {
    minimal: { kind: 'postgres', url: 'postgres://app@db/app' },
    local: async () => ({ kind: 'postgres', url: await postgres.createDatabase('registry') }),
    location: /^PostgreSQL at 127\.0\.0\.1:\d+\/registry_/,
    reads: [],
  },
  dynamodb: {
    minimal: { kind: 'dynamodb', table: 'retention-control' },
    local: async () => ({
      kind: 'dynamodb',
      table: dynamo.tableName('control'),
      region: 'us-east-1',
      endpoint: await dynamo.client().config.endpoint!().then(
        (endpoint) => `${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`,
      ),
    }),
    location: /^DynamoDB table .*control/,
    reads: [
      'dynamodb:DescribeTable',
      'dynamodb:DescribeTimeToLive',
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:Query',
      'dynamodb:Query',
    ],
  },
};

const controlCases = CONTROL_BACKENDS.map((backend) => ({ kind: backend.kind, ...CONTROL_CASES[backend.kind] }));
const ANY_POLICY = STORE_CASES.s3.blobs!.policy;

describe('every registered control store kind', () => {
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    [postgres, dynamo] = await Promise.all([startTestPostgres(), startDynalite()]);
    // The control store takes its credentials from the environment, as on Lambda; dynalite takes any.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  });
  afterAll(async () => {
    process.env = savedEnv;
    await Promise.all([postgres?.stop(), dynamo?.stop()]);
  });

  it.each(controlCases)('$kind: the config schema parses it', ({ kind, minimal }) => {
    expect(parseConfig({ control: minimal, policies: [ANY_POLICY] }).control?.kind).toBe(kind);
  });

  it('an unknown kind is refused, naming every registered kind', () => {
    const error = configError(() =>
      parseConfig({ control: { kind: 'redis' } as unknown as ControlInput, policies: [ANY_POLICY] }),
    );
    const known = CONTROL_BACKENDS.map((backend) => backend.kind).join(', ');
    expect(error.issues[0]).toMatchObject({
      path: 'control.kind',
      message: `unknown control store kind (known: ${known})`,
    });
  });

  it.each(controlCases)('$kind: the factory loads its code and opens a working store', async ({ local, location }) => {
    const opened = await openControlStore(parseConfig({ control: await local(), policies: [ANY_POLICY] }), { env: {} });
    try {
      expect(opened.location).toMatch(location);
      await opened.control.pause('*', 'registry test', 'checking the store works');
      expect((await opened.control.listPauses()).map((pause) => pause.scope)).toEqual(['*']);
    } finally {
      await opened.close();
    }
  });

  it('none configured: the default kind opens, and without a database says how to configure one', async () => {
    expect(DEFAULT_CONTROL.kind).toBe('postgres');
    await expect(openControlStore(parseConfig({ policies: [ANY_POLICY] }), { env: {} })).rejects.toThrow(
      /control: no control database configured/,
    );
  });

  it.each(controlCases)('$kind: the deployment plan grants what its descriptor says', ({ kind, minimal, reads }) => {
    const config = parseConfig({ control: minimal, policies: [ANY_POLICY] });
    const plan = planDeployment(config, CONTEXT);
    const grant = controlBackend(kind).deployment.grant as (
      control: unknown,
      access: ControlAccess,
      aws: AwsScope,
    ) => Grant;
    const reading = grant(config.control, 'read-only', AWS);
    expect(plan.controlKind).toBe(kind);
    expect(grantedTo(plan, 'health').permissions).toEqual(reading.statements);
    expect(reading.statements.flatMap((statement) => statement.actions)).toEqual(reads);
    const writing = grant(config.control, 'read-write', AWS);
    expect(grantedTo(plan, 'blobs').permissions).toEqual(expect.arrayContaining(writing.statements));
    // A configured store is reached through its config: the default's URL secret is not asked for.
    expect(plan.secrets).not.toContain('databaseUrl');
  });
});

/**
 * Validating a config and planning a deployment read the descriptors only: no SDK or database
 * driver is loaded (they come with a store's `load()`). A child process records every module
 * it resolves.
 */
describe('the registries at config and deploy time', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'retention-registry-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('load no SDK or driver', async () => {
    const log = path.join(dir, 'resolved.txt');
    const hooks = path.join(dir, 'hooks.mjs');
    await writeFile(
      hooks,
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, result.url + '\\n');
  return result;
}`,
    );
    const register = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`;
    // Every store kind (fs only validated: a Lambda function cannot serve it), with each control kind.
    const named = storeCases.map((entry, index) => ({
      ...entry,
      policy: { ...entry.policy, name: `policy-${index}` },
    }));
    const deployable = named.filter((entry) => entry.granted !== 'refused').map((entry) => entry.policy);
    const configs = [
      ...CONTROL_BACKENDS.map((backend) => ({ control: CONTROL_CASES[backend.kind].minimal, policies: deployable })),
      { policies: named.map((entry) => entry.policy) },
    ];
    const script = `
      const { parseConfig } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'lib/config/load.ts')).href)});
      const { planDeployment } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'lib/serverless/deployment.ts')).href)});
      const configs = ${JSON.stringify(configs)}.map((config) => parseConfig(config));
      for (const config of configs.slice(0, -1)) planDeployment(config, ${JSON.stringify(CONTEXT)});
      process.stdout.write(String(configs.length));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        `data:text/javascript,${encodeURIComponent(register)}`,
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: ROOT },
    );
    expect(stdout).toBe(String(configs.length));
    const resolved = (await readFile(log, 'utf8')).split('\n');
    expect(resolved.some((url) => url.endsWith('/lib/stores/descriptors.ts'))).toBe(true);
    // Nor is any backend's loader reached: its import() would put the store code in every bundle.
    expect(resolved.filter((url) => /\/lib\/(stores|control)\/.*load\w*\.ts$/.test(url))).toEqual([]);
    const packages = new Set(resolved.flatMap((url) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? []));
    // The schemas' own (cron expressions, globs, zod): any other package is an SDK or driver come too early.
    expect([...packages].sort()).toEqual(['cron-parser', 'picomatch', 'zod']);
  });
});
