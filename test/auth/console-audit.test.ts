/**
 * The console with callers and without a token, in Debian's chromium: the audit view lists who did
 * what (for a caller with the admin scope; others see the refusal), and a node without a token still
 * serves its own console, whose requests are loopback and same-origin.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenSha256 } from '../../src/auth/tokens.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const CHROMIUM = '/usr/bin/chromium';
const prefixes = [uniquePrefix('console-audit'), uniquePrefix('console-open')];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-console-audit-'));
const BOSS = 'boss-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcd';

let scoped: { node: SprocdNode; url: string };
let open: { node: SprocdNode; url: string };
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
  const file = path.join(dir, 'callers.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      callers: [
        { name: 'boss', tokenSha256: tokenSha256(BOSS), scopes: ['read', 'execute', 'admin'] },
        { name: 'viewer', tokenSha256: tokenSha256(VIEWER), scopes: ['read'] },
      ],
    }),
  );
  scoped = await startInProcessNode(prefixes[0]!, { SPROCD_CALLERS_FILE: file });
  open = await startInProcessNode(prefixes[1]!);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
});

afterAll(async () => {
  await browser?.close();
  await scoped?.node.stop();
  await open?.node.stop();
  for (const prefix of prefixes) {
    await deletePrefix(testClient(), prefix);
  }
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function signIn(url: string, token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.evaluate('sessionStorage.clear()');
  await page.goto(`${url}/console/`);
  await page.locator('#token').waitFor();
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.locator('nav.sidebar').waitFor();
}

describe('the console', () => {
  it('shows the audit trail: who did what, filtered by action', async () => {
    const res = await fetch(`${scoped.url}/v1/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BOSS}`, 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 'audited' }),
    });
    const { number } = (await res.json()) as { number: number };
    await signIn(scoped.url, BOSS);
    await page.click('nav.sidebar a:has-text("Audit trail")');
    const row = page.locator('#audit-table tr[data-action="execute"]').first();
    await row.waitFor();
    expect(await row.locator('td').nth(1).innerText()).toContain('boss');
    await row.locator(`a[href="#/executions/${number}"]`).waitFor();
    await page.selectOption('select[name=action]', 'backup');
    await page.getByText('No entry matches.').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('tells a caller without the admin scope that the trail is not theirs to read', async () => {
    await signIn(scoped.url, VIEWER);
    await page.evaluate('location.hash = "#/audit"');
    await page.locator('.notice-error', { hasText: 'FORBIDDEN' }).waitFor();
    expect(await page.locator('.notice-error').innerText()).toContain('"admin"');
  });

  it('on a node without a token: the console works, its calls being loopback and same-origin', async () => {
    await page.goto(`${open.url}/console/`);
    await page.locator('nav.sidebar').waitFor();
    await page.locator('#nodes td', { hasText: open.node.name }).waitFor();
    await page.locator('.sidebar [data-live="live"]').waitFor();
    await page.evaluate('location.hash = "#/audit"');
    await page.locator('#audit-table, .empty').first().waitFor();
    expect(pageErrors).toEqual([]);
  });
});
