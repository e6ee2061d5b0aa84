import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo, seedDocumentsTable } from '../../lib/demo/seed.ts';
import { createSqlClient } from '../../lib/sql/client.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { launchChromium } from './chromium.ts';
import { type ServeProcess, startServe } from './serve.ts';

/**
 * The web dashboard in headless Chromium, served by `retention serve` (a child process, as an
 * operator starts it) over the demo config: sign in once, see the demo policies, dry-run one and
 * read its items, pause one, run one and watch its progress bar reach the end, see the history
 * chart count the deletions. The last state is a screenshot: docs/dashboard.png (shown in the README)
 * with UPDATE_SCREENSHOTS=1, else a scratch file, so that a test run leaves the checkout as it was.
 */
const DOCS_SCREENSHOT = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));
const OPERATOR = 'dashboard-operator-token-0123456789';
/** app-logs holds one log per day, 0 to 119 days (and an hour) old: past 30d are days 30 to 119. */
const EXPIRED_LOGS = 90;

const shared = usePostgresAndScratch('retention-dashboard-');
let serve: ServeProcess;
let browser: Browser;
let page: Page;
let demoDir: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  const databaseUrl = await shared.server.createDatabase('dashboard');
  demoDir = path.join(shared.scratch, 'demo');
  const now = new Date();
  const { config } = await seedDemo(demoDir, now, databaseUrl);
  const sql = createSqlClient({ url: databaseUrl });
  await seedDocumentsTable(sql, now).finally(() => sql.close());
  // Small batches, so the live run reports progress several times before it ends.
  const policies = config.policies.map((policy) =>
    policy.name === 'app-logs' ? { ...policy, batchSize: 10 } : policy,
  );
  const configFile = path.join(demoDir, 'retention.demo.json');
  await writeFile(configFile, JSON.stringify({ ...config, policies }), { mode: 0o600 });
  const env = {
    RETENTION_DATABASE_URL: databaseUrl,
    RETENTION_API_TOKEN: OPERATOR,
    RETENTION_HOME: path.join(shared.scratch, 'home'),
  };
  const serving = startServe(['--config', configFile], env);
  // Assigned before anything can fail, so afterAll stops it whatever failed.
  [serve, browser] = await Promise.all([
    serving,
    launchChromium().finally(() => serving.then((started) => (serve = started))),
  ]);
  page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
});

afterAll(async () => {
  let exitCode: number | null | undefined;
  try {
    await browser?.close();
  } finally {
    exitCode = await serve?.stop();
  }
  // A script error anywhere in the page fails the file, even where no assertion looked.
  expect(pageErrors).toEqual([]);
  if (serve) expect(exitCode).toBe(0);
});

const row = (policy: string) => page.locator(`#policies tr[data-policy="${policy}"]`);
const chartTotal = async (): Promise<number> =>
  Number(await page.locator('#chart-deletions').getAttribute('data-total'));

describe('web dashboard', () => {
  it('signs in with the token once and lists the demo policies with their status', async () => {
    await page.goto(`${serve.url}/`);
    await page.fill('#token', OPERATOR);
    await page.click('#sign-in');
    await expect
      .poll(() =>
        page.locator('#policies tbody tr').evaluateAll((rows) => rows.map((tr) => (tr as HTMLElement).dataset.policy)),
      )
      .toEqual(['temp-audio', 'app-logs', 'thumbnail-cache', 'documents']);
    expect(await page.locator('#role').textContent()).toBe('operator');
    // Nothing has run yet: no backlog is measured, and the history is empty.
    expect(await page.locator('[data-card="items-to-clean"] .detail').textContent()).toContain('not measured yet');
    expect(await chartTotal()).toBe(0);
    // The demo's fs policies live on one file system: one disk card, with its level.
    const disk = page.locator('#disk-cards [data-card^="disk-"]');
    await disk.first().waitFor();
    expect(await disk.count()).toBe(1);
    expect(await disk.locator('.badge').textContent()).toMatch(/^(ok|warning|critical)$/);
    // The token stays in this tab: a reload opens the dashboard without asking again.
    await page.reload();
    await page.locator('#policies tbody tr').first().waitFor();
    expect(await page.locator('#login').isHidden()).toBe(true);
  });

  it('dry-runs a policy and lists exactly the items past retention', async () => {
    await row('app-logs').locator('[data-action="dry-run"]').click();
    const section = page.locator('#dry-run[data-run-id]');
    await section.waitFor();
    const keys = await page.locator('#dry-run-items tr[data-outcome="would_delete"] td:first-child').allTextContents();
    const expected = Array.from(
      { length: EXPIRED_LOGS },
      (_, index) => `app/app-${String(30 + index).padStart(3, '0')}.log`,
    );
    expect(keys.sort()).toEqual(expected);
    expect(await section.getAttribute('data-count')).toBe(String(EXPIRED_LOGS));
    // A dry run deletes nothing.
    expect(await logFiles()).toHaveLength(121);
    // Its count and size are what the overview now shows for the policy.
    await expect.poll(() => row('app-logs').locator('[data-cell="to-clean"]').textContent()).toMatch(/^90/);
  });

  it('pauses a policy with its toggle, recorded with the API actor', async () => {
    await row('thumbnail-cache').locator('[data-action="toggle"]').click();
    await expect.poll(() => row('thumbnail-cache').getAttribute('data-status')).toBe('paused');
    const pauses = (await (
      await fetch(`${serve.url}/api/pauses`, { headers: { authorization: `Bearer ${OPERATOR}` } })
    ).json()) as Array<{ scope: string; by: string }>;
    expect(pauses).toEqual([expect.objectContaining({ scope: 'thumbnail-cache', by: 'api:operator' })]);
  });

  it('runs a policy after confirming the dry-run count, and the progress bar goes to the end', async () => {
    const before = await chartTotal();
    await row('app-logs').locator('[data-action="run"]').click();
    const dialog = page.locator('#confirm-run[open]');
    await dialog.waitFor();
    expect(await page.locator('#confirm-text').getAttribute('data-count')).toBe(String(EXPIRED_LOGS));
    // Record every value the live run's bar takes (the <progress> value attribute), from the start.
    await page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { barValues: number[] }).barValues = seen;
      new MutationObserver((records) => {
        for (const record of records) {
          const target = record.target as HTMLElement;
          if (target instanceof HTMLProgressElement && !target.closest('.run')?.textContent?.includes('dry run'))
            seen.push(target.value);
        }
      }).observe(document.getElementById('progress-list')!, {
        subtree: true,
        attributes: true,
        attributeFilter: ['value'],
      });
    });
    await page.click('#confirm-go');
    const live = page.locator('.run[data-policy="app-logs"][data-state="done"]:not(:has-text("dry run"))');
    await live.waitFor();
    expect(await live.getAttribute('data-status')).toBe('completed');
    expect(await live.locator('progress').evaluate((bar) => (bar as HTMLProgressElement).value)).toBe(1);
    expect(await live.textContent()).toContain(`deleted ${EXPIRED_LOGS}`);
    const values = await page.evaluate(() => (window as unknown as { barValues: number[] }).barValues);
    expect(values.at(-1)).toBe(1);
    expect(
      values.some((value) => value > 0 && value < 1),
      `bar values: ${values.join(', ')}`,
    ).toBe(true);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    // What the bar said happened, happened: only the young logs are left.
    expect(await logFiles()).toHaveLength(121 - EXPIRED_LOGS);
    // The history chart counts the deletions once the page has refreshed.
    await expect.poll(chartTotal).toBe(before + EXPIRED_LOGS);
    await expect.poll(() => page.locator('#history tbody tr').count()).toBeGreaterThanOrEqual(3);
  });

  it('adds a legal hold from the form, recorded with the API actor', async () => {
    await page.selectOption('#hold-policy', 'documents');
    await page.selectOption('#hold-match', 'prefix');
    await page.fill('#hold-key', '42');
    await page.fill('#hold-reason', 'litigation hold: case 2026-17');
    await page.click('#hold-form button[type="submit"]');
    const cells = page.locator('#holds tbody tr[data-hold]').first().locator('td');
    await expect.poll(() => cells.nth(3).textContent()).toBe('42');
    expect(await cells.allTextContents()).toEqual(
      expect.arrayContaining(['documents', 'prefix', 'litigation hold: case 2026-17', 'api:operator']),
    );
  });

  it('finds a deleted log in the audit search, with the API actor', async () => {
    const key = `app/app-${String(30 + 7).padStart(3, '0')}.log`;
    await page.fill('#audit-key', key);
    await page.click('#audit-form button[type="submit"]');
    const cells = page.locator('#audit tbody tr').first().locator('td');
    await expect.poll(() => cells.nth(4).textContent()).toBe(key);
    expect(await cells.nth(2).textContent()).toBe('deleted');
    expect(await cells.nth(6).textContent()).toBe('api:operator');
    const screenshot =
      process.env.UPDATE_SCREENSHOTS === '1' ? DOCS_SCREENSHOT : path.join(shared.scratch, 'dashboard.png');
    await mkdir(path.dirname(screenshot), { recursive: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    expect((await page.screenshot({ path: screenshot, fullPage: true })).length).toBeGreaterThan(10_000);
  });
});

async function logFiles(): Promise<string[]> {
  return readdir(path.join(demoDir, 'data', 'logs', 'app'));
}
