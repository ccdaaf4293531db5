/**
 * The console in a real browser: Debian's chromium driven by playwright-core against a real node (and
 * the test Redis). One browser and one page for the whole file; the tests run in order and each leaves
 * nothing running. The last one saves a screenshot of every page at 1280×800 (into docs/console/ when
 * UPDATE_SCREENSHOTS=1, into a temporary folder otherwise).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import { ROOT, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));
const TOKEN = 'console-test-token-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const prefix = uniquePrefix('console');
const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-console-backups-'));
const shotsDir =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(ROOT, 'docs', 'console')
    : fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-console-shots-'));

let node: SprocdNode;
let url: string;
let browser: Browser;
let page: Page;
/** Script errors and CSP violations seen by the page; every test ends with none. */
const pageErrors: string[] = [];

/** Calls the node's API with the token. */
async function api<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}/v1${route}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) {
    throw new Error(`${method} ${route}: ${res.status} ${text}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

const execute = (procedure: string, params?: unknown, extra: Record<string, unknown> = {}) =>
  api<{ number: number; state: string }>('POST', '/executions', { procedure, params, ...extra });
const stateOf = async (n: number) => (await api<{ state: string }>('GET', `/executions/${n}`)).state;

/** Goes to a console route (hash) without reloading the page. */
async function show(route: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
}

/** The state badge in the page title. */
const titleState = () => page.locator('h1 .badge').getAttribute('data-state');

beforeAll(async () => {
  expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
  ({ node, url } = await startInProcessNode(prefix, {
    SPROCD_TOKEN: TOKEN,
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs'),
    SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle'),
    SPROCD_BACKUP_DIR: backupDir,
    // A nightly schedule, for the schedules view (no tick falls inside a run of this file).
    SPROCD_BACKUP_CRON: '0 30 3 * * *',
    // One at a time, so a second execution stays waiting behind the first.
    SPROCD_CONCURRENCY: '1',
  }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Uncaught|SyntaxError|TypeError/.test(msg.text())) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
});

// With one execution at a time, a test that fails half-way must not leave the next one waiting.
afterEach(async () => {
  for (const state of ['active', 'waiting']) {
    const { items } = await api<{ items: { number: number }[] }>('GET', `/executions?state=${state}`);
    for (const { number } of items) {
      await api('POST', `/executions/${number}/abort`).catch(() => undefined);
    }
  }
});

afterAll(async () => {
  await browser?.close();
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(backupDir, { recursive: true, force: true });
  if (process.env.UPDATE_SCREENSHOTS !== '1') {
    fs.rmSync(shotsDir, { recursive: true, force: true });
  }
});

describe('the console', () => {
  it('serves its files without the token, under a strict content security policy', async () => {
    const res = await fetch(`${url}/console/`);
    expect(res.status).toBe(200);
    const policy = res.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("default-src 'self'");
    expect(policy).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(policy).not.toContain('unsafe-inline');
    expect(await res.text()).toContain('<script type="importmap">');
    for (const asset of [
      'app.js',
      'vendor/preact.mjs',
      'vendor/hooks.mjs',
      'vendor/htm.mjs',
      'vendor/uPlot.esm.js',
    ]) {
      const file = await fetch(`${url}/console/${asset}`);
      expect(file.status, asset).toBe(200);
      expect(file.headers.get('content-type'), asset).toMatch(/^text\/javascript/);
    }
    expect((await fetch(`${url}/v1/nodes`)).status).toBe(401);
    expect((await fetch(`${url}/console/nope.js`)).status).toBe(404);
  });

  it('asks for the token, refuses a wrong one, and keeps the right one for the tab only', async () => {
    await page.goto(`${url}/console`);
    await page.locator('#token').waitFor();
    await page.fill('#token', 'not-the-token-at-all');
    await page.click('button[type=submit]');
    await page.getByText('The node refused this token.').waitFor();
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.locator('nav.sidebar').waitFor();
    await page.locator('h1', { hasText: 'Overview' }).waitFor();
    expect(await page.evaluate(`sessionStorage.getItem('sprocd.token')`)).toBe(TOKEN);
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([]);
    expect(page.url()).not.toContain(TOKEN);
    // The live nodes table shows this node, and the event stream (fetch with the bearer header) is up.
    await page.locator('#nodes td', { hasText: node.name }).waitFor();
    await page.locator('.sidebar [data-live="live"]').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('follows an execution from waiting to completed without a reload', async () => {
    const blocker = await execute('wait');
    await waitUntil(async () => expect(await stateOf(blocker.number)).toBe('active'));
    const queued = await execute('wait', { ms: 10 });
    expect(queued.state).toBe('waiting');
    await page.evaluate('window.stayed = true'); // gone if the page reloads
    await show(`#/executions/${queued.number}`);
    await page.locator(`[data-execution="${queued.number}"]`).waitFor();
    expect(await titleState()).toBe('waiting');

    await api('POST', `/executions/${blocker.number}/wake`);
    await page.locator('h1 .badge[data-state="completed"]').waitFor();
    await page.locator('#result', { hasText: '"woken"' }).waitFor();
    expect(await page.evaluate('window.stayed')).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('keeps the executions list live on a digest of execution events, and asks for each event on an execution page', async () => {
    const streams: string[] = [];
    const seen = (request: { url(): string }) => {
      if (request.url().includes('/v1/events')) {
        streams.push(request.url());
      }
    };
    page.on('request', seen);
    try {
      await show('#/executions');
      await page.evaluate('window.stayed = true');
      await waitUntil(async () =>
        expect(new URL(streams.at(-1) ?? 'http://x/').searchParams.get('digest')).toBe('1000'),
      );
      const greeted = await execute('greet', { who: 'Grace' });
      await page
        .locator(`#executions-table tr[data-number="${greeted.number}"][data-state="completed"]`)
        .waitFor();
      expect(await page.evaluate('window.stayed')).toBe(true);
      // Its own page shows each progress event as it comes: no digest there.
      await show(`#/executions/${greeted.number}`);
      await waitUntil(async () => {
        const last = new URL(streams.at(-1) ?? 'http://x/');
        expect(last.searchParams.get('types')).toContain('execution.progress');
        expect(last.searchParams.has('digest')).toBe(false);
      });
    } finally {
      page.off('request', seen);
    }
    expect(pageErrors).toEqual([]);
  });

  it('aborts an execution from its page after a confirmation, then retries it', async () => {
    const running = await execute('wait');
    await waitUntil(async () => expect(await stateOf(running.number)).toBe('active'));
    await show(`#/executions/${running.number}`);
    await page.locator(`[data-execution="${running.number}"] h1 .badge[data-state="active"]`).waitFor();
    await page.click('.page-actions button:has-text("Abort")');
    await page.locator('.dialog', { hasText: `Abort execution #${running.number}?` }).waitFor();
    await page.click('.dialog button.btn-danger');
    await page.locator('h1 .badge[data-state="aborted"]').waitFor();
    expect(await stateOf(running.number)).toBe('aborted');
    await page.locator('#error', { hasText: 'ABORTED' }).waitFor();

    // Retried: a new execution with the same params, linked both ways, and the page follows it.
    await page.click('.page-actions button:has-text("Retry")');
    const retry = page.locator(`[data-execution]:not([data-execution="${running.number}"])`);
    await retry.waitFor();
    await retry.locator('#summary', { hasText: `#${running.number}` }).waitFor();
    const number = Number(await retry.getAttribute('data-execution'));
    expect(await api('GET', `/executions/${number}`)).toMatchObject({
      procedure: 'wait',
      retryOf: running.number,
    });
    expect(pageErrors).toEqual([]);
  });

  it('filters the list by state and procedure', async () => {
    const failed = await execute('fail');
    const greeted = await execute('greet', { who: 'Ada' });
    await waitUntil(async () => {
      expect(await stateOf(failed.number)).toBe('failed');
      expect(await stateOf(greeted.number)).toBe('completed');
    });
    await show('#/executions');
    await page.locator(`#executions-table tr[data-number="${greeted.number}"]`).waitFor();
    await page.selectOption('select[name=state]', 'failed');
    await page.locator(`#executions-table tr[data-number="${failed.number}"]`).waitFor();
    await waitUntil(async () => {
      const states = await page
        .locator('#executions-table tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-state')));
      expect(states.length).toBeGreaterThan(0);
      expect(new Set(states)).toEqual(new Set(['failed']));
    });
    expect(page.url()).toContain('state=failed');

    await page.selectOption('select[name=state]', '');
    await page.selectOption('select[name=procedure]', 'greet');
    await page.locator(`#executions-table tr[data-number="${greeted.number}"]`).waitFor();
    await waitUntil(async () => {
      const procedures = await page
        .locator('#executions-table tbody tr td:nth-child(2)')
        .evaluateAll((cells) => cells.map((c) => c.textContent));
      expect(new Set(procedures)).toEqual(new Set(['greet']));
    });
    expect(pageErrors).toEqual([]);
  });

  it('removes every execution a filter matches, after a confirmation that states the count', async () => {
    const more = [await execute('fail'), await execute('fail')];
    await waitUntil(async () => {
      for (const { number } of more) {
        expect(await stateOf(number)).toBe('failed');
      }
    });
    const { items } = await api<{ items: unknown[] }>('GET', '/executions?state=failed&procedure=fail');
    expect(items.length).toBeGreaterThanOrEqual(3);
    await show('#/executions?state=failed&procedure=fail');
    await page.locator(`#executions-table tr[data-number="${more[1]!.number}"]`).waitFor();
    await page.click('.page-actions button:has-text("Remove all")');
    const dialog = page.locator('.dialog');
    await dialog.locator(`[data-bulk-count="${items.length}"]`).waitFor();
    expect(await dialog.locator('h3').textContent()).toBe(`Remove ${items.length} executions?`);
    await dialog.locator('button.btn-danger').click();
    await page.getByText('No execution matches.').waitFor();
    expect((await api<{ items: unknown[] }>('GET', '/executions?state=failed&procedure=fail')).items).toEqual(
      [],
    );
    expect(pageErrors).toEqual([]);
  });

  it('runs a procedure from the form generated from its params schema', async () => {
    await show('#/procedures/greet');
    await page.locator('form.schema-form').waitFor();
    await page.fill('#param-who', 'Grace');
    await page.fill('#param-times', '2');
    await page.click('form.schema-form button[type=submit]');
    await page.locator('h1 .badge[data-state="completed"]').waitFor();
    await page.locator('#result', { hasText: 'Hello, Grace!' }).waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('shows who holds a storage lock while a use is held, and the key free after', async () => {
    const holder = await execute('hold', { key: 'console-lock' });
    await waitUntil(async () => expect(await stateOf(holder.number)).toBe('active'));
    await show('#/session?key=console-lock');
    await page.locator('#session-info', { hasText: 'storedProcedure' }).waitFor();
    await page.locator('#lock [data-holder]', { hasText: `#${holder.number}` }).waitFor();
    await page.locator('#entries-table tr[data-key="console-lock"]').waitFor();

    await api('POST', `/executions/${holder.number}/wake`);
    await waitUntil(async () => expect(await stateOf(holder.number)).toBe('completed'));
    await page.locator('#lock .badge', { hasText: 'free' }).waitFor();
    await page.locator('#entry .json', { hasText: '"heldBy"' }).waitFor();
    expect(pageErrors).toEqual([]);
  });

  it('edits a storage entry through use, after a confirmation', async () => {
    await show('#/session?key=console-lock');
    await page.locator('#entry .json', { hasText: '"heldBy"' }).waitFor();
    await page.click('#entry button:has-text("Edit")');
    await page.fill('#entry textarea', '{ "heldBy": 0, "note": "edited in the console" }');
    await page.click('#entry button:has-text("Save")');
    await page.locator('.dialog', { hasText: 'Write entry "console-lock"?' }).waitFor();
    await page.click('.dialog button.btn-danger');
    await page.locator('#entry .json', { hasText: 'edited in the console' }).waitFor();
    expect(await api('GET', '/session/storage/console-lock')).toEqual({
      heldBy: 0,
      note: 'edited in the console',
    });
    expect(pageErrors).toEqual([]);
  });

  it('starts a backup and shows its progress until it is done', async () => {
    await show('#/backups');
    await page.locator('h1', { hasText: 'Schedules & backups' }).waitFor();
    await page.click('button:has-text("Back up now")');
    await page.locator('#backup-running[data-backup]').waitFor();
    await page.locator('#backup-running [role=progressbar]').waitFor();
    const number = Number(await page.locator('#backup-running').getAttribute('data-backup'));
    const row = page.locator(`#backups-table tr[data-backup="${number}"]`);
    await row.locator('.badge[data-state="completed"]').waitFor();
    await page.locator('#backup-running').waitFor({ state: 'detached' });
    expect(await row.locator('.status-code').textContent()).toBe('0');
    expect(pageErrors).toEqual([]);
  });

  it('renders every page without a script error, and saves their screenshots', async () => {
    // A few more executions so the pages show something worth seeing.
    const delayed = await execute('wait', { ms: 5 }, { delayMs: 3_600_000, name: 'tomorrow' });
    for (const who of ['Ada', 'Linus', 'Barbara']) {
      await execute('greet', { who, times: 1 });
    }
    const failed = await execute(
      'fail',
      { report: 'daily-sales', region: 'eu-west', day: '2026-11-29' },
      { name: 'nightly-report' },
    );
    await execute('store', { key: 'config', value: { greeting: 'Hello', startedNodes: 2 } });
    await execute('store', { key: 'accounts', value: { alice: { balance: 120.5 }, bob: { balance: 99 } } });
    const stored = await execute('store', { key: 'audit', value: { entries: [{ at: 1, by: 'ada' }] } });
    await waitUntil(async () => {
      expect(await stateOf(failed.number)).toBe('failed');
      expect(await stateOf(stored.number)).toBe('completed');
    });
    // Left holding its lock while the pages are shown, with the console's own write waiting behind it;
    // afterEach aborts the holder, and the write then goes through.
    const holder = await execute('hold', { key: 'accounts' });
    await waitUntil(async () => expect(await stateOf(holder.number)).toBe('active'));
    const write = api('PUT', '/session/storage/accounts', {
      value: { alice: { balance: 100 }, bob: { balance: 119.5 } },
    }).catch(() => undefined);
    const pages: [string, string, string][] = [
      ['overview', '#/overview', '#nodes'],
      ['executions', '#/executions', '#executions-table'],
      ['execution', `#/executions/${failed.number}`, '#error'],
      ['procedures', '#/procedures', '#procedures-table'],
      ['procedure', '#/procedures/greet', 'form.schema-form'],
      ['session', '#/session?key=accounts', '#lock .waiters li'],
      ['backups', '#/backups', '#backups-table'],
    ];
    for (const toast of await page.locator('.toast').all()) {
      await toast.click().catch(() => undefined); // dismissed; it may have timed out already
    }
    await page.mouse.move(1, 1);
    for (const [name, route, ready] of pages) {
      await show(route);
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(400); // charts draw on the next frame
      await page.screenshot({ path: path.join(shotsDir, `${name}.png`) });
    }
    await api('POST', `/executions/${delayed.number}/abort`);
    await api('POST', `/executions/${holder.number}/abort`);
    await write;
    await page.evaluate('sessionStorage.clear()');
    await page.goto(`${url}/console/`);
    await page.locator('#token').waitFor();
    await page.screenshot({ path: path.join(shotsDir, 'sign-in.png') });
    for (const name of [...pages.map(([n]) => n), 'sign-in']) {
      expect(fs.statSync(path.join(shotsDir, `${name}.png`)).size).toBeGreaterThan(10_000);
    }
    expect(pageErrors).toEqual([]);
  });
});

/** vi.waitFor with this file's patience. */
function waitUntil<T>(fn: () => Promise<T>): Promise<T> {
  return vi.waitFor(fn, { timeout: 15_000, interval: 100 });
}
