import { access, constants } from 'node:fs/promises';
import { type Browser, chromium } from 'playwright-core';

/**
 * Debian's Chromium (apt-get install -y chromium; `.ci/run` installs it) driven by playwright-core,
 * which downloads no browser of its own. Without it the dashboard tests fail, saying how to get it:
 * a browser test that skipped quietly would let a broken page pass.
 */
export const CHROMIUM = process.env.RETENTION_TEST_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  await access(CHROMIUM, constants.X_OK).catch(() => {
    throw new Error(
      `the dashboard tests need Chromium at ${CHROMIUM}: ` +
        'install it with `apt-get install -y chromium` (or set RETENTION_TEST_CHROMIUM)',
    );
  });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}
