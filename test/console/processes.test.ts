/**
 * The console's views of 4D's process features, in Debian's chromium against a real node: PAUSE and
 * RESUME PROCESS from an execution's page, the Workers page (CALL WORKER, KILL WORKER), the signal and
 * semaphore lookups, and what a read-only caller sees of their buttons. The last test saves the Workers
 * page and a paused execution's page at 1280×800 (into docs/console/ when UPDATE_SCREENSHOTS=1, into a
 * temporary folder otherwise).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenSha256 } from '../../src/auth/tokens.js';
import type { SprocdNode } from '../../src/node.js';
import { ROOT, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const OPS = 'ops-token-0123456789abcdefgh';
const VIEWER = 'viewer-token-0123456789abcd';
const prefix = uniquePrefix('console-processes');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-console-processes-'));
const shotsDir =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(ROOT, 'docs', 'console')
    : fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-console-shots-'));

let node: SprocdNode;
let url: string;
let browser: Browser;
let page: Page;
/** Script errors seen by the page; every test ends with none. */
const pageErrors: string[] = [];

/** Calls the node's API as the operator (every scope this file needs). */
async function api<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}/v1${route}`, {
    method,
    headers: {
      authorization: `Bearer ${OPS}`,
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

const execute = (procedure: string, params?: unknown) =>
  api<{ number: number; state: string }>('POST', '/executions', { procedure, params });
const stateOf = async (n: number) => (await api<{ state: string }>('GET', `/executions/${n}`)).state;
const workers = async () =>
  (await api<{ items: { name: string; pending: number; processed: number }[] }>('GET', '/workers')).items;

async function show(route: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
}

async function signIn(token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.evaluate('sessionStorage.clear()');
  await page.goto(`${url}/console/`);
  await page.locator('#token').waitFor();
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.locator('nav.sidebar').waitFor();
}

beforeAll(async () => {
  expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
  const callers = path.join(dir, 'callers.json');
  fs.writeFileSync(
    callers,
    JSON.stringify({
      callers: [
        { name: 'ops', tokenSha256: tokenSha256(OPS), scopes: ['read', 'execute', 'control'] },
        { name: 'viewer', tokenSha256: tokenSha256(VIEWER), scopes: ['read'] },
      ],
    }),
  );
  ({ node, url } = await startInProcessNode(prefix, {
    SPROCD_CALLERS_FILE: callers,
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs'),
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
  await signIn(OPS);
});

// A test that fails half-way leaves no execution running and no worker behind.
afterEach(async () => {
  for (const state of ['active', 'waiting', 'delayed']) {
    const { items } = await api<{ items: { number: number }[] }>('GET', `/executions?state=${state}`);
    for (const { number } of items) {
      await api('POST', `/executions/${number}/abort`).catch(() => undefined);
    }
  }
  for (const { name } of await workers()) {
    await api('DELETE', `/workers/${encodeURIComponent(name)}`).catch(() => undefined);
  }
});

afterAll(async () => {
  await browser?.close();
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
  if (process.env.UPDATE_SCREENSHOTS !== '1') {
    fs.rmSync(shotsDir, { recursive: true, force: true });
  }
});

describe('the console', () => {
  it('pauses an active execution from its page and resumes it, the paused badge coming and going', async () => {
    const running = await execute('wait');
    await waitUntil(async () => expect(await stateOf(running.number)).toBe('active'));
    await show(`#/executions/${running.number}`);
    const head = page.locator(`[data-execution="${running.number}"] .page-head`);
    await head.locator('h1 .badge[data-state="active"]').waitFor();
    expect(await head.locator('[data-paused]').count()).toBe(0);
    // In its ctx.delay: Process state 1.
    await page.locator('#summary', { hasText: /Process state\s*1 delayed/ }).waitFor();

    await head.locator('button:has-text("Pause")').click();
    await head.locator('h1 [data-paused]').waitFor();
    await head.locator('button:has-text("Resume")').waitFor();
    expect(await head.locator('button:has-text("Pause")').count()).toBe(0);
    await page.locator('#summary', { hasText: /Process state\s*5 paused/ }).waitFor();
    expect(await api('GET', `/processes/${running.number}/state`)).toEqual({
      number: running.number,
      code: 5,
    });
    expect(await stateOf(running.number)).toBe('active');

    // Resumed: its ctx.delay ends now, so it completes; the badge goes without a reload.
    await page.evaluate('window.stayed = true');
    await head.locator('button:has-text("Resume")').click();
    await head.locator('h1 [data-paused]').waitFor({ state: 'detached' });
    await head.locator('h1 .badge[data-state="completed"]').waitFor();
    await page.locator('#result', { hasText: '"woken"' }).waitFor();
    expect(await page.evaluate('window.stayed')).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('shows a pause made elsewhere (the API) on the open page, and hides Wake while paused', async () => {
    const running = await execute('wait');
    await waitUntil(async () => expect(await stateOf(running.number)).toBe('active'));
    await show(`#/executions/${running.number}`);
    const head = page.locator(`[data-execution="${running.number}"] .page-head`);
    await head.locator('button:has-text("Wake")').waitFor();
    await api('POST', `/executions/${running.number}/pause`);
    await head.locator('h1 [data-paused]').waitFor();
    expect(await head.locator('button:has-text("Wake")').count()).toBe(0);
    await api('POST', `/executions/${running.number}/resume`);
    await head.locator('h1 .badge[data-state="completed"]').waitFor();
    expect(await head.locator('[data-paused]').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('lists a worker created by a call from the Workers page, and kill removes it after a confirmation', async () => {
    await page.click('nav.sidebar a:has-text("Workers")');
    await page.locator('#workers .empty', { hasText: 'ctx.callWorker' }).waitFor();

    // Checked before anything is sent: params that are not JSON, a "$" name.
    await page.fill('#worker-name', 'ledger');
    await page.selectOption('#worker-procedure', 'greet');
    await page.fill('#worker-params', '{ who: Ada }');
    await page.click('#call-worker button[type=submit]');
    await page.locator('#call-worker [role=alert]', { hasText: 'not JSON' }).waitFor();
    await page.fill('#worker-params', '{ "who": "Ada" }');
    await page.fill('#worker-name', '$local');
    await page.click('#call-worker button[type=submit]');
    await page.locator('#call-worker [role=alert]', { hasText: 'shared by the cluster' }).waitFor();
    expect(await workers()).toEqual([]);

    await page.fill('#worker-name', 'ledger');
    await page.click('#call-worker button[type=submit]');
    const row = page.locator('#workers-table tr[data-worker="ledger"]');
    await row.waitFor();
    await waitUntil(async () => expect(await row.locator('td').nth(4).textContent()).toBe('1'));
    expect(await row.locator('td').nth(1).textContent()).toBe(node.name);
    // A second message for a busy worker waits in its mailbox, and the page shows it running.
    await api('POST', '/workers/ledger/calls', { procedure: 'wait', params: { ms: 60_000 } });
    await api('POST', '/workers/ledger/calls', { procedure: 'greet', params: { who: 'Linus' } });
    await row.locator('[data-current="wait"]').waitFor();
    await row.locator('td[data-pending="1"]').waitFor();

    await row.locator('button:has-text("Kill")').click();
    const dialog = page.locator('.dialog', { hasText: 'Kill worker "ledger"?' });
    await dialog.waitFor();
    await dialog.locator('button:has-text("Cancel")').click();
    await dialog.waitFor({ state: 'detached' });
    expect((await workers()).map((w) => w.name)).toEqual(['ledger']);
    await row.locator('button:has-text("Kill")').click();
    await dialog.locator('button.btn-danger').click();
    // Busy: it drops the queued message and ends after the one it runs.
    await row.locator('.badge', { hasText: 'ending' }).waitFor();
    await row.locator('td[data-pending="0"]').waitFor();

    // An idle worker ends at once, and leaves the list. "Call" on a row fills the form with its name.
    await page.fill('#worker-name', '');
    await page.click('#workers-table tr[data-worker="ledger"] button:has-text("Call")');
    expect(await page.inputValue('#worker-name')).toBe('ledger');
    await page.fill('#worker-name', 'archive');
    await page.click('#call-worker button[type=submit]');
    const idle = page.locator('#workers-table tr[data-worker="archive"]');
    await waitUntil(async () => expect(await idle.locator('td').nth(4).textContent()).toBe('1'));
    await idle.locator('button:has-text("Kill")').click();
    await page.locator('.dialog button.btn-danger').click();
    await idle.waitFor({ state: 'detached' });
    expect((await workers()).map((w) => w.name)).not.toContain('archive');
    expect(pageErrors).toEqual([]);
  });

  it('looks a signal up, triggers it after a confirmation, and tests a semaphore', async () => {
    const waiter = await execute('await-signal', { semaphore: 'month-end' });
    const signal = await waitUntil(async () => {
      const view = await api<{ progress?: { signal?: string } }>('GET', `/executions/${waiter.number}`);
      expect(view.progress?.signal).toBeTruthy();
      return view.progress!.signal!;
    });
    await show('#/workers');
    await page.fill('#semaphore-name', 'month-end');
    await page.click('#semaphore button:has-text("Look up")');
    await page.locator('#semaphore [data-semaphore="month-end"] .badge', { hasText: 'held' }).waitFor();

    await page.fill('#signal-id', signal);
    await page.click('#signal button:has-text("Look up")');
    await page.locator(`#signal [data-signal="${signal}"]`, { hasText: 'month-end report ready' }).waitFor();
    await page.locator('#signal .badge', { hasText: 'not signaled' }).waitFor();
    await page.fill('#signal-result', '{ "rows": 42 }');
    await page.click('#signal button:has-text("Trigger")');
    await page.locator('.dialog', { hasText: 'Trigger signal "month-end report ready"?' }).waitFor();
    await page.click('.dialog button.btn-danger');
    await page.locator('#signal .badge', { hasText: /^signaled$/ }).waitFor();
    await page.locator('#signal .json', { hasText: '42' }).waitFor();
    await waitUntil(async () => expect(await stateOf(waiter.number)).toBe('completed'));
    expect(await api('GET', `/executions/${waiter.number}`)).toMatchObject({ result: { got: { rows: 42 } } });
    // The execution ended: its semaphore is free, and the open lookup says so without a new look-up.
    await page.locator('#semaphore [data-semaphore="month-end"] .badge', { hasText: 'free' }).waitFor();
    expect(pageErrors).toEqual([]);
  });

  it("shows a read-only caller the pages, and the API's refusal when it presses a button", async () => {
    const running = await execute('wait');
    await waitUntil(async () => expect(await stateOf(running.number)).toBe('active'));
    await api('POST', '/workers/reports/calls', { procedure: 'greet', params: { who: 'Ada' } });
    await signIn(VIEWER);
    try {
      await show(`#/executions/${running.number}`);
      await page.locator(`[data-execution="${running.number}"] h1 .badge[data-state="active"]`).waitFor();
      await page.click('.page-actions button:has-text("Pause")');
      await page
        .locator('.toast-error', {
          hasText: /lacks the scope "control" \(POST \/v1\/executions\/:number\/pause\)/,
        })
        .waitFor();
      expect((await api<{ code: number }>('GET', `/processes/${running.number}/state`)).code).not.toBe(5);

      await show('#/workers');
      const row = page.locator('#workers-table tr[data-worker="reports"]');
      await row.locator('button:has-text("Kill")').click();
      await page.click('.dialog button.btn-danger');
      await page
        .locator('.toast-error', { hasText: /lacks the scope "control" \(DELETE \/v1\/workers\/:name\)/ })
        .waitFor();
      await page.fill('#worker-name', 'reports');
      await page.selectOption('#worker-procedure', 'greet');
      await page.fill('#worker-params', '{ "who": "Grace" }');
      await page.click('#call-worker button[type=submit]');
      await page.locator('.toast-error', { hasText: 'lacks the scope "execute' }).waitFor();
      // Only the operator's message reached it.
      await waitUntil(async () =>
        expect((await workers()).find((w) => w.name === 'reports')).toMatchObject({
          pending: 0,
          processed: 1,
        }),
      );
    } finally {
      await signIn(OPS);
    }
    expect(pageErrors).toEqual([]);
  });

  it('renders the Workers page and a paused execution, and saves their screenshots', async () => {
    await api('POST', '/workers/invoices/calls', { procedure: 'greet', params: { who: 'Ada' } });
    await api('POST', '/workers/mailer/calls', { procedure: 'wait', params: { ms: 60_000 } });
    for (const who of ['Linus', 'Barbara', 'Grace']) {
      await api('POST', '/workers/mailer/calls', { procedure: 'greet', params: { who } });
    }
    await api('POST', '/workers/reports/calls', { procedure: 'fail' });
    const waiter = await execute('await-signal', { semaphore: 'month-end' });
    const signal = await waitUntil(async () => {
      const view = await api<{ progress?: { signal?: string } }>('GET', `/executions/${waiter.number}`);
      expect(view.progress?.signal).toBeTruthy();
      return view.progress!.signal!;
    });
    await page.goto(`${url}/console/#/workers`);
    await page.locator('#workers-table tr[data-worker="mailer"] [data-current="wait"]').waitFor();
    await page.locator('#workers-table tr[data-worker="reports"] .rate-bad').waitFor();
    await page.locator('#workers-table tr[data-worker="invoices"]').waitFor();
    await page.click('#workers-table tr[data-worker="invoices"] button:has-text("Call")');
    await page.selectOption('#worker-procedure', 'greet');
    await page.fill('#worker-params', '{ "who": "Ada", "times": 2 }');
    await page.fill('#signal-id', signal);
    await page.click('#signal button:has-text("Look up")');
    await page.locator(`#signal [data-signal="${signal}"]`).waitFor();
    await page.fill('#semaphore-name', 'month-end');
    await page.click('#semaphore button:has-text("Look up")');
    await page.locator('#semaphore [data-semaphore="month-end"]').waitFor();
    await page.locator('#worker-params').focus();
    await page.mouse.move(1, 1);
    await page.screenshot({ path: path.join(shotsDir, 'workers.png') });

    // And a paused execution's page.
    const paused = await execute('wait', { ms: 60_000 });
    await waitUntil(async () => expect(await stateOf(paused.number)).toBe('active'));
    await api('POST', `/executions/${paused.number}/pause`);
    await show(`#/executions/${paused.number}`);
    await page.locator(`[data-execution="${paused.number}"] h1 [data-paused]`).waitFor();
    await page.locator('#timeline .tl').first().waitFor();
    await page.mouse.move(1, 1);
    await page.screenshot({ path: path.join(shotsDir, 'execution-paused.png') });
    for (const name of ['workers', 'execution-paused']) {
      expect(fs.statSync(path.join(shotsDir, `${name}.png`)).size).toBeGreaterThan(10_000);
    }
    expect(pageErrors).toEqual([]);
  });
});

/** vi.waitFor with this file's patience. */
function waitUntil<T>(fn: () => Promise<T>): Promise<T> {
  return vi.waitFor(fn, { timeout: 15_000, interval: 100 });
}
