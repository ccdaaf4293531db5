/**
 * Behaviour that crosses processes, with real node processes (bin/sprocd.js) on the test Redis:
 * two nodes sharing work, unique names from two nodes, abort on the other node, SIGKILL mid-execution,
 * SIGTERM with waiting work and a restart, and starts that must fail.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { waitForState } from '../support/executions.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

/** How long an execution may take to reach the state a test waits for, across processes. */
const WAIT_MS = 20_000;
const nodes: ChildNode[] = [];
const prefixes: string[] = [];

function prefix(): string {
  const p = uniquePrefix('cl');
  prefixes.push(p);
  return p;
}

async function start(p: string, env: Record<string, string> = {}, waitReady = true): Promise<ChildNode> {
  const node = await spawnNode(p, env, { waitReady });
  nodes.push(node);
  return node;
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  const redis = testClient();
  for (const p of prefixes) {
    await deletePrefix(redis, p);
  }
  await closeTestClients();
});

describe('two nodes', () => {
  it('share the work', async () => {
    const p = prefix();
    const [a, b] = await Promise.all([
      start(p, { SPROCD_CONCURRENCY: '4' }),
      start(p, { SPROCD_CONCURRENCY: '4' }),
    ]);
    const views = await Promise.all(
      Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).client.execute('sleep', { ms: 200 })),
    );
    const done = await Promise.all(views.map((v) => waitForState(a.client, v.number, 'completed', WAIT_MS)));
    const ranOn = new Set(done.map((d) => (d.result as { node: string }).node));
    expect(ranOn.size).toBe(2);
    const nodesSeen = (await a.client.nodes()) as { node: string }[];
    expect(nodesSeen.length).toBe(2);
  });

  it('start one execution for a unique name asked on both at once', async () => {
    const p = prefix();
    const [a, b] = await Promise.all([start(p), start(p)]);
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 ? a : b).client.execute('sleep', { ms: 1000 }, { name: 'singleton', unique: true }),
      ),
    );
    expect(new Set(results.map((r) => r.number)).size).toBe(1);
    expect(results.filter((r) => !r.existing).length).toBe(1);
  });

  it('hand an execution to the node that has its procedure (a rolling deploy)', async () => {
    const p = prefix();
    const newer = await start(p, {
      SPROCD_CONCURRENCY: '1',
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'jobs-newer'),
    });
    const older = await start(p, { SPROCD_CONCURRENCY: '4' });
    await expect.poll(() => older.client.nodes(), { timeout: 15_000 }).toHaveLength(2);
    // The newer node is busy, so the older one takes the execution first and must hand it over.
    const busy = await newer.client.execute('sleep', { ms: 1500 });
    await waitForState(newer.client, busy.number, 'active', WAIT_MS);
    const view = await newer.client.execute('added');
    const done = await waitForState(newer.client, view.number, 'completed', WAIT_MS);
    const newerName = String(newer.lines.find((l) => l.msg === 'sprocd node ready')?.node);
    expect(done.result).toEqual({ node: newerName, attempt: 1 });
    expect(
      older.lines.some(
        (l) => l.execution === view.number && String(l.msg).startsWith('execution handed over'),
      ),
    ).toBe(true);
    // A procedure that no live node has fails at once.
    await newer.kill('SIGKILL');
    await expect.poll(() => older.client.nodes(), { timeout: 10_000 }).toHaveLength(1);
    await expect(older.client.execute('added')).rejects.toMatchObject({ status: 404 });
  });

  it('abort an execution that runs on the other node', async () => {
    const p = prefix();
    const a = await start(p, { SPROCD_CONCURRENCY: '2' });
    const view = await a.client.execute('sleep', { ms: 60_000 });
    await waitForState(a.client, view.number, 'active', WAIT_MS);
    const b = await start(p, { SPROCD_CONCURRENCY: '2' });
    const waiting = await b.client.execute('echo', 'x', { delayMs: 60_000 });
    await b.client.abort(view.number);
    await b.client.abort(waiting.number);
    const aborted = await waitForState(b.client, view.number, 'aborted', 5000);
    expect(aborted.error?.code).toBe('ABORTED');
    expect((await a.client.get(waiting.number)).state).toBe('aborted');
    expect(a.lines.some((l) => l.execution === view.number && l.outcome === 'aborted')).toBe(true);
  });
});

describe('faults and restarts', () => {
  it('SIGKILL mid-execution: the work finishes on another node, attempt raised', async () => {
    const p = prefix();
    const a = await start(p);
    // Long enough that node b's start (seconds on a loaded machine) never outlasts it; the second
    // attempt is woken once it runs on b.
    const view = await a.client.execute('sleep', { ms: 120_000 });
    await waitForState(a.client, view.number, 'active', WAIT_MS);
    const b = await start(p);
    await a.kill('SIGKILL');
    await vi.waitFor(
      async () => {
        const again = await b.client.get(view.number);
        expect(again).toMatchObject({ state: 'active', attempt: 2 });
      },
      { timeout: 30_000, interval: 100 },
    );
    await b.client.wake(view.number);
    const done = await waitForState(b.client, view.number, 'completed', 30_000);
    expect(done.result).toMatchObject({ attempt: 2 });
    expect((done.result as { node: string }).node).not.toBe(
      a.lines.find((l) => l.msg === 'sprocd node ready')?.node,
    );
  });

  it('SIGKILL of the only node: its next start runs the execution again', async () => {
    const p = prefix();
    const a = await start(p);
    const view = await a.client.execute('sleep', { ms: 2000 });
    await waitForState(a.client, view.number, 'active', WAIT_MS);
    const queued = await a.client.execute('echo', 'queued behind');
    await a.kill('SIGKILL');
    const b = await start(p);
    const done = await waitForState(b.client, view.number, 'completed', 30_000);
    expect(done.result).toMatchObject({ attempt: 2 });
    expect((await waitForState(b.client, queued.number, 'completed', WAIT_MS)).result).toBe('queued behind');
  });

  it('SIGTERM keeps waiting work and gives back running work; a restart runs all of it', async () => {
    const p = prefix();
    const env = { SPROCD_CONCURRENCY: '1', SPROCD_SHUTDOWN_GRACE_MS: '300' };
    const a = await start(p, env);
    const running = await a.client.execute('stubborn', { ms: 4000 });
    await waitForState(a.client, running.number, 'active', WAIT_MS);
    const queued = await Promise.all(Array.from({ length: 5 }, (_, i) => a.client.execute('echo', i)));
    const delayed = await a.client.execute('echo', 'delayed', { delayMs: 1500 });
    expect(await a.stop()).toBe(0);
    const shutdownOrder = a.lines.map((l) => l.msg);
    expect(shutdownOrder.indexOf('stopping: new executions are refused')).toBeLessThan(
      shutdownOrder.indexOf('stopped'),
    );

    const b = await start(p, env);
    // Given back, not failed: it runs again from the start.
    const again = await waitForState(b.client, running.number, 'completed', 20_000);
    expect(again.result).toMatchObject({ attempt: 2 });
    for (const q of [...queued, delayed]) {
      expect((await waitForState(b.client, q.number, 'completed', WAIT_MS)).state).toBe('completed');
    }
  });

  it('a request waiting for an execution does not hold the stop', async () => {
    const a = await start(prefix(), { SPROCD_SHUTDOWN_GRACE_MS: '300' });
    const waiting = a.client.execute('stubborn', { ms: 60_000 }, { wait: 60_000 });
    await a.waitForLine((l) => l.msg === 'execution started');
    const t0 = Date.now();
    a.proc.kill('SIGTERM');
    const answer = await waiting;
    expect(answer.state).not.toBe('completed');
    expect(await a.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('refuses new executions while stopping and runs onServerShutdown', async () => {
    const p = prefix();
    const a = await start(p, {
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-record'),
      SPROCD_SHUTDOWN_GRACE_MS: '3000',
    });
    const coop = await a.client.execute('cooperative');
    await waitForState(a.client, coop.number, 'active', WAIT_MS);
    a.proc.kill('SIGTERM');
    await a.waitForLine((l) => l.msg === 'stopping: new executions are refused');
    await expect(a.client.execute('echo', 1)).rejects.toMatchObject({ status: 503 });
    expect(await a.exited).toBe(0);
    // It ended within the grace period, so it keeps the state it ended in.
    const b = await start(p);
    const finished = await b.client.get(coop.number);
    expect(finished).toMatchObject({ state: 'completed', result: { stopped: 'NODE_STOPPING' } });
    expect(await b.client.storage('lifecycle')).toEqual({ startups: 1, shutdowns: 1 });
  });
});

describe('starts that must fail or wait', () => {
  it('a throwing onServerStartup stops the start with a non-zero exit and the error logged', async () => {
    const a = await start(prefix(), { SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-throw') }, false);
    expect(await a.exited).not.toBe(0);
    expect(JSON.stringify(a.lines)).toMatch(/startup refused by the test hook/);
  });

  it('a broken jobs/ module stops the start with its path', async () => {
    const a = await start(prefix(), { SPROCD_JOBS_DIR: path.join(FIXTURES, 'broken-jobs') }, false);
    expect(await a.exited).not.toBe(0);
    expect(JSON.stringify(a.lines)).toMatch(/broken-jobs\/bad\.mjs/);
    const b = await start(prefix(), { SPROCD_JOBS_DIR: path.join(FIXTURES, 'noexport-jobs') }, false);
    expect(await b.exited).not.toBe(0);
    expect(JSON.stringify(b.lines)).toMatch(/nodefault\.ts.*no default export/);
  });

  it('SIGTERM during onServerStartup stops the node cleanly without starting work', async () => {
    const p = prefix();
    const a = await start(
      p,
      { SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-slow'), TEST_STARTUP_MS: '8000' },
      false,
    );
    await a.waitForLine((l) => l.msg === 'connected to Redis');
    const t0 = Date.now();
    a.proc.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(a.lines.some((l) => l.msg === 'sprocd node ready')).toBe(false);
  });

  it('/readyz and /v1 answer 503 until onServerStartup has finished', async () => {
    const a = await start(
      prefix(),
      { SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-slow'), TEST_STARTUP_MS: '3000', PORT: '0' },
      false,
    );
    const listening = await a.waitForLine((l) => l.msg === 'api listening');
    const url = String(listening.url);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const v1 = await fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo' }),
    });
    expect(v1.status).toBe(503);
    expect(((await v1.json()) as { error: { code: string } }).error.code).toBe('NOT_READY');
    await a.waitForLine((l) => l.msg === 'sprocd node ready');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});
