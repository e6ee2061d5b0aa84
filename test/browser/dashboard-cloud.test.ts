import { readdir } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_LOADERS } from '../../lib/control/registry.ts';
import { createApiHandler } from '../../lib/serverless/apiHandler.ts';
import { createRuntime, type Runtime } from '../../lib/serverless/runtime.ts';
import { seedFiles } from '../support/cli.ts';
import { type FunctionUrl, startFunctionUrl } from '../support/functionUrl.ts';
import {
  FUNCTION_NAME,
  type HandlerFixture,
  handlerFixture,
  lambdaContext,
  slowDeletes,
} from '../support/handlerFixture.ts';
import { type LambdaStandIn, startLambdaStandIn } from '../support/lambda.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { launchChromium } from './chromium.ts';

/**
 * The dashboard in headless Chromium against the cloud API: functions/api.ts's handler behind a
 * local Function URL (responses whole, as AWS sends them), whose runs are asynchronous invokes of
 * the real data-class handler through a local Lambda Invoke API. A run's events are snapshots
 * there; the page must keep asking until the run is done, for the dry run and the live run alike.
 */
const OPERATOR = 'cloud-operator-token-0123456789abcdef';
const DAY = 86_400_000;
const OLD = Array.from({ length: 12 }, (_, index) => `old-${String(index).padStart(2, '0')}.log`);

const shared = usePostgresAndScratch('retention-dashboard-cloud-');
let lambda: LambdaStandIn;
let fixture: HandlerFixture;
let apiRuntime: Runtime;
let functionUrl: FunctionUrl;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** The paths of the event requests the page made, and what each answered. */
const eventAnswers: Array<{ path: string; event: string }> = [];

beforeAll(async () => {
  lambda = await startLambdaStandIn();
  // Three delete batches of a second each: the live run is still running when the page first asks.
  fixture = await handlerFixture(shared.server, shared.scratch, {
    lambda: lambda.client,
    policy: { batchSize: 4 },
    wrapStore: slowDeletes(1_000),
  });
  await seedFiles(fixture.root, [
    ...OLD.map((key) => ({ key, mtime: new Date(Date.now() - 40 * DAY) })),
    { key: 'new.log', mtime: new Date(Date.now() - DAY) },
  ]);
  lambda.register(FUNCTION_NAME, (payload) => fixture.handler(payload, lambdaContext(60_000)));
  apiRuntime = createRuntime({
    controls: CONTROL_LOADERS,
    env: { RETENTION_CONFIG: fixture.configPath },
    databaseUrl: fixture.databaseUrl,
    sink: { write: () => undefined },
  });
  const handler = createApiHandler(apiRuntime, {
    tokens: { operator: OPERATOR, viewer: undefined },
    env: { RETENTION_FUNCTION_BLOBS: FUNCTION_NAME },
    lambda: lambda.client,
  });
  const recording: typeof handler = async (event) => {
    const response = await handler(event);
    const { rawPath } = event as { rawPath: string };
    if (rawPath.endsWith('/events'))
      eventAnswers.push({ path: rawPath, event: /^event: (\w+)/.exec(response.body)![1]! });
    return response;
  };
  [functionUrl, browser] = await Promise.all([startFunctionUrl(recording), launchChromium()]);
  page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
});

afterAll(async () => {
  await browser?.close();
  await functionUrl?.stop();
  await lambda?.idle();
  await lambda?.stop();
  await Promise.all([apiRuntime?.close(), fixture?.runtime.close()]);
  expect(pageErrors).toEqual([]);
});

const row = (policy: string) => page.locator(`#policies tr[data-policy="${policy}"]`);

describe('the dashboard on the cloud API', () => {
  it('signs in and dry-runs a policy in its data-class function, listing exactly the items past retention', async () => {
    await page.goto(`${functionUrl.url}/`);
    await page.fill('#token', OPERATOR);
    await page.click('#sign-in');
    await row('files').waitFor();
    await row('files').locator('[data-action="dry-run"]').click();
    await page.locator('#dry-run[data-run-id]').waitFor();
    const keys = await page.locator('#dry-run-items tr[data-outcome="would_delete"] td:first-child').allTextContents();
    expect(keys.sort()).toEqual(OLD);
    expect(lambda.invocations.map((invocation) => [invocation.type, invocation.payload])).toEqual([
      ['Event', expect.objectContaining({ policy: 'files', dryRun: true, list: true, actor: 'api:operator' })],
    ]);
    expect(await readdir(fixture.root)).toHaveLength(OLD.length + 1);
  });

  it('runs it after confirming the dry-run count, following the run to its end by snapshots', async () => {
    await row('files').locator('[data-action="run"]').click();
    await page.locator('#confirm-run[open]').waitFor();
    expect(await page.locator('#confirm-text').getAttribute('data-count')).toBe(String(OLD.length));
    await page.click('#confirm-go');
    const live = page.locator('.run[data-policy="files"][data-state="done"]:not(:has-text("dry run"))');
    await live.waitFor();
    expect(await live.getAttribute('data-status')).toBe('completed');
    expect(await live.textContent()).toContain(`deleted ${OLD.length}`);
    expect(await readdir(fixture.root)).toEqual(['new.log']);
    // The page was told `running`, asked again after the retry, and stopped at `done`.
    const runId = await live.getAttribute('data-run-id');
    const answers = eventAnswers.filter((answer) => answer.path === `/api/runs/${runId}/events`).map((a) => a.event);
    expect(answers.at(-1)).toBe('done');
    expect(answers.slice(0, -1).length).toBeGreaterThan(0);
    expect(new Set(answers.slice(0, -1))).toEqual(new Set(['running']));
    expect(lambda.invocations.map((invocation) => invocation.payload)).toEqual([
      expect.objectContaining({ dryRun: true, list: true }),
      expect.objectContaining({ dryRun: true, list: false }),
      expect.objectContaining({ dryRun: false, list: false }),
    ]);
  });
});
