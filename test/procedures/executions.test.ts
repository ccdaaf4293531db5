/**
 * Execute on server through the HTTP API of an in-process node, against the real test Redis:
 * results, validation, unique names, delay, priority, retries, abort, wake, progress, retention.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('exec');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '8' }));
});

afterAll(async () => {
  await node?.stop();
  const redis = testClient();
  await deletePrefix(redis, prefix);
  await closeTestClients();
});

describe('Execute on server', () => {
  it('runs a procedure and keeps its result', async () => {
    const started = await client.execute('echo', { hello: [1, 2, 3] });
    expect(started.number).toBeGreaterThan(0);
    expect(started.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(['waiting', 'active', 'completed']).toContain(started.state);
    const done = await waitForState(client, started.number, 'completed');
    expect(done).toMatchObject({
      state: 'completed',
      result: { hello: [1, 2, 3] },
      attempt: 1,
      procedure: 'echo',
    });
    expect(done.finishedAt).toBeDefined();
  });

  it('answers 200 with the result when asked to wait', async () => {
    const done = await client.execute('validated', { a: 2, b: 40 }, { wait: 10_000 });
    expect(done).toMatchObject({ state: 'completed', result: { sum: 42 } });
  });

  it('gives positive numbers that grow and never repeat', async () => {
    const views = await Promise.all(Array.from({ length: 30 }, () => client.execute('noop')));
    const numbers = views.map((v) => v.number);
    expect(new Set(numbers).size).toBe(30);
    expect(Math.min(...numbers)).toBeGreaterThan(0);
  });

  it('loads procedures from sub-folders and plain .mjs modules', async () => {
    expect((await client.execute('nested/deeper/leaf', null, { wait: 10_000 })).result).toBe('leaf');
    expect((await client.execute('plain', [1, 'a'], { wait: 10_000 })).result).toEqual({
      js: true,
      params: [1, 'a'],
    });
  });

  it('lists procedures with their params as JSON Schema', async () => {
    const list = await client.procedures();
    const validated = list.find((p) => p.name === 'validated');
    expect(validated?.params).toMatchObject({ type: 'object', properties: { a: { type: 'integer' } } });
    expect(list.map((p) => p.name)).toContain('nested/deeper/leaf');
  });

  it('starts another execution from inside one (ctx.executeOnServer)', async () => {
    const parent = await client.execute('spawner', { value: 'from parent' }, { wait: 10_000 });
    const childNumber = (parent.result as { child: number }).child;
    const child = await waitForState(client, childNumber, 'completed');
    expect(child).toMatchObject({ result: 'from parent', name: `child-of-${parent.number}` });
  });

  it('fails an execution that runs past its timeoutMs', async () => {
    const t0 = Date.now();
    const done = await client.execute('overtime', null, { wait: 10_000 });
    expect(done).toMatchObject({ state: 'failed', error: { code: 'EXECUTION_TIMEOUT' } });
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('fails an execution whose result is not JSON, with a clear error', async () => {
    const done = await client.execute('badresult', null, { wait: 10_000 });
    expect(done.state).toBe('failed');
    expect(done.error?.message).toMatch(/result must be JSON: result\.when is a Map/);
  });
});

describe('refused requests queue nothing', () => {
  async function queued(): Promise<number> {
    const counts = await node.internals().executions.queues[0]!.getJobCounts();
    return Object.values(counts).reduce((a, b) => a + b, 0);
  }

  it.each([
    [
      'a schema failure',
      { procedure: 'validated', params: { a: 'x', b: 1 } },
      400,
      'VALIDATION_FAILED',
      /a: /,
    ],
    ['an unknown procedure', { procedure: 'nope' }, 404, 'UNKNOWN_PROCEDURE', /nope/],
    ['a $-prefixed name', { procedure: 'echo', name: '$local' }, 400, 'INVALID_NAME', /\$/],
    ['an empty name', { procedure: 'echo', name: '' }, 400, 'INVALID_NAME', /non-empty/],
    ['a name over 255 characters', { procedure: 'echo', name: 'x'.repeat(256) }, 400, 'INVALID_NAME', /255/],
    ['a path-like procedure', { procedure: '../etc/passwd' }, 400, 'INVALID_NAME', /segments/],
    ['a procedure over 200 characters', { procedure: 'a'.repeat(201) }, 400, 'INVALID_NAME', /200/],
    ['unique without a name', { procedure: 'echo', unique: true }, 400, 'VALIDATION_FAILED', /name/],
    ['a negative delay', { procedure: 'echo', delayMs: -1 }, 400, 'VALIDATION_FAILED', /delayMs/],
    ['an unknown field', { procedure: 'echo', delay: 5 }, 400, 'VALIDATION_FAILED', /delay/],
    ['a fractional priority', { procedure: 'echo', priority: 1.5 }, 400, 'VALIDATION_FAILED', /priority/],
    [
      'params nested too deep',
      { procedure: 'echo', params: JSON.parse('['.repeat(300) + ']'.repeat(300)) as unknown },
      400,
      'VALIDATION_FAILED',
      /nested deeper than 256 levels/,
    ],
  ])('%s', async (_label, body, status, code, message) => {
    const before = await queued();
    const seq = await node.internals().redis.get(node.internals().keys.sequence);
    const res = await fetch(`${client.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe(code);
    expect(json.error.message).toMatch(message);
    expect(await queued()).toBe(before);
    expect(await node.internals().redis.get(node.internals().keys.sequence)).toBe(seq);
  });

  it('refuses malformed JSON and other content types', async () => {
    const bad = await fetch(`${client.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"procedure": "echo",',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_JSON');
    const text = await fetch(`${client.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'echo',
    });
    expect(text.status).toBe(415);
    expect(((await text.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await fetch(`${client.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 'x'.repeat(1024 * 1024 + 10) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers 404 for unknown executions and 400 for bad numbers', async () => {
    await expect(client.get(987654321)).rejects.toMatchObject({ status: 404, code: 'EXECUTION_NOT_FOUND' });
    const res = await fetch(`${client.url}/v1/executions/abc`);
    expect(res.status).toBe(400);
  });
});

describe('unique process names', () => {
  it('starts one execution for many simultaneous requests of one name', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.execute('sleep', { ms: 1500 }, { name: 'only-one', unique: true }),
      ),
    );
    const numbers = new Set(results.map((r) => r.number));
    expect(numbers.size).toBe(1);
    expect(results.filter((r) => r.existing).length).toBe(19);
    const [number] = numbers;
    // Once it has finished, the name is free again.
    await waitForState(client, number!, 'completed');
    const again = await client.execute('sleep', { ms: 1 }, { name: 'only-one', unique: true });
    expect(again.number).not.toBe(number);
    expect(again.existing).toBeUndefined();
  });

  it('with wait, waits for the existing one', async () => {
    const first = await client.execute('sleep', { ms: 500 }, { name: 'wait-existing', unique: true });
    const second = await client.execute(
      'sleep',
      { ms: 1 },
      { name: 'wait-existing', unique: true, wait: 10_000 },
    );
    expect(second).toMatchObject({ number: first.number, existing: true, state: 'completed' });
  });
});

describe('delay, priority and retries', () => {
  it('holds a delayed execution until its time', async () => {
    const started = Date.now();
    const view = await client.execute('echo', 'later', { delayMs: 800 });
    expect(view.state).toBe('delayed');
    const done = await waitForState(client, view.number, 'completed');
    expect(Date.parse(done.startedAt!)).toBeGreaterThanOrEqual(started + 750);
  });

  it('retries with backoff and counts starts in ctx.process.attempt', async () => {
    const ok = await client.execute('fail', { succeedOn: 3 }, { wait: 15_000 });
    expect(ok).toMatchObject({ state: 'completed', result: { attempt: 3 }, attempt: 3 });
    const bad = await client.execute('fail', null, { wait: 15_000 });
    expect(bad).toMatchObject({
      state: 'failed',
      attempt: 3,
      error: { code: 'BOOM', message: 'boom on attempt 3' },
    });
    const once = await client.execute('fail', null, { attempts: 1, wait: 15_000 });
    expect(once).toMatchObject({ state: 'failed', attempt: 1 });
  });

  it('runs urgent executions first', async () => {
    // Fill every slot, then queue low and high priority work behind it.
    const blockers = await Promise.all(Array.from({ length: 8 }, () => client.execute('sleep', { ms: 600 })));
    await waitForState(client, blockers[7]!.number, 'active');
    const low = await client.execute('echo', 'low', { priority: 100 });
    const high = await client.execute('echo', 'high', { priority: 1 });
    const lowDone = await waitForState(client, low.number, 'completed');
    const highDone = await waitForState(client, high.number, 'completed');
    expect(Date.parse(highDone.startedAt!)).toBeLessThanOrEqual(Date.parse(lowDone.startedAt!));
  });
});

describe('abort, wake, progress', () => {
  it('aborts a waiting execution: it never starts', async () => {
    const view = await client.execute('echo', 'never', { delayMs: 60_000 });
    const aborted = await client.abort(view.number);
    expect(aborted.state).toBe('aborted');
    expect(aborted.startedAt).toBeUndefined();
    await expect(client.abort(view.number)).rejects.toMatchObject({
      status: 409,
      code: 'EXECUTION_FINISHED',
    });
  });

  it('aborts an active execution through ctx.signal, even one that ignores it', async () => {
    const coop = await client.execute('cooperative');
    const stubborn = await client.execute('stubborn', { ms: 20_000 });
    await waitForState(client, stubborn.number, 'active');
    await waitForState(client, coop.number, 'active');
    await client.abort(coop.number);
    await client.abort(stubborn.number);
    const a = await waitForState(client, coop.number, 'aborted', 5000);
    const b = await waitForState(client, stubborn.number, 'aborted', 5000);
    expect(a.state).toBe('aborted');
    expect(b).toMatchObject({ state: 'aborted', error: { code: 'ABORTED' } });
  });

  it('a unique name is free again once its execution is aborted', async () => {
    const first = await client.execute('echo', 1, { name: 'abort-frees', unique: true, delayMs: 60_000 });
    await client.abort(first.number);
    const second = await client.execute('echo', 2, { name: 'abort-frees', unique: true });
    expect(second.number).not.toBe(first.number);
  });

  it('wake ends a start delay: the execution runs now', async () => {
    const view = await client.execute('echo', 'early', { delayMs: 600_000 });
    expect(view.state).toBe('delayed');
    await client.wake(view.number);
    const done = await waitForState(client, view.number, 'completed', 10_000);
    expect(done.result).toBe('early');
  });

  it('shows progress and ends ctx.delay early on wake', async () => {
    const view = await client.execute('progress');
    const active = await vi.waitFor(
      async () => {
        const v = await client.get(view.number);
        expect(v.progress).toBe(42);
        return v;
      },
      { timeout: 15_000, interval: 25 },
    );
    expect(active.state).toBe('active');
    await client.wake(view.number);
    const done = await waitForState(client, view.number, 'completed', 5000);
    expect(done).toMatchObject({ result: 'woken', progress: { phase: 'done' } });
    await expect(client.wake(view.number)).rejects.toMatchObject({ status: 409 });
  });
});

describe('listing and retention', () => {
  it('lists newest first with filters', async () => {
    const a = await client.execute('echo', 1, { name: 'list-me' });
    const b = await client.execute('echo', 2, { name: 'list-me' });
    await waitForState(client, b.number, 'completed');
    await waitForState(client, a.number, 'completed');
    const items = await client.list({ name: 'list-me' });
    expect(items.map((i) => i.number)).toEqual([b.number, a.number]);
    const completed = await client.list({ state: 'completed', procedure: 'echo', limit: 2 });
    expect(completed.length).toBe(2);
    expect(completed.every((i) => i.state === 'completed' && i.procedure === 'echo')).toBe(true);
  });

  it('drops finished executions older than SPROCD_KEEP_FINISHED_S', async () => {
    const agePrefix = uniquePrefix('age');
    const short = await startInProcessNode(agePrefix, { SPROCD_KEEP_FINISHED_S: '1' });
    try {
      const old = await short.client.execute('echo', 'old', { wait: 5000 });
      await new Promise((r) => setTimeout(r, 1500));
      // BullMQ trims a queue by age when its next execution finishes: with queue shards, the next
      // one in old's shard (numbers are consecutive, so one of the next S).
      const shards = testKeys(agePrefix).queues;
      const oldShard = shards.ofNumber(old.number).shard;
      let next = await short.client.execute('echo', 'new', { wait: 5000 });
      for (let i = 1; i < shards.count && shards.ofNumber(next.number).shard !== oldShard; i++) {
        next = await short.client.execute('echo', 'new', { wait: 5000 });
      }
      expect(shards.ofNumber(next.number).shard).toBe(oldShard);
      await expect(short.client.get(old.number)).rejects.toMatchObject({ status: 404 });
    } finally {
      await short.node.stop();
      await deletePrefix(testClient(), short.node.settings.prefix);
    }
  });

  it('keeps two deployments with other prefixes on one Redis apart', async () => {
    const other = await startInProcessNode(uniquePrefix('other'));
    try {
      await other.node.session.storage.use('shared-name', (d) => {
        d.owner = 'other';
      });
      await node.session.storage.use('shared-name', (d) => {
        d.owner = 'this';
      });
      expect(await other.client.storage('shared-name')).toEqual({ owner: 'other' });
      expect(await client.storage('shared-name')).toEqual({ owner: 'this' });
      expect((await other.client.session()).id).not.toBe((await client.session()).id);
      const mine = await client.execute('echo', 'mine', { name: 'apart', delayMs: 60_000 });
      expect(await other.client.list({ name: 'apart' })).toEqual([]);
      await expect(other.client.abort(mine.number)).rejects.toMatchObject({ status: 404 });
      expect((await client.get(mine.number)).state).toBe('delayed');
    } finally {
      await other.node.stop();
      await deletePrefix(testClient(), other.node.settings.prefix);
    }
  });

  it('keeps only SPROCD_KEEP_FINISHED finished executions', async () => {
    const small = await startInProcessNode(uniquePrefix('keep'), { SPROCD_KEEP_FINISHED: '2' });
    try {
      const views = [];
      for (let i = 0; i < 5; i++) {
        views.push(await small.client.execute('echo', i, { wait: 5000 }));
      }
      await expect(small.client.get(views[0]!.number)).rejects.toMatchObject({ status: 404 });
      expect((await small.client.get(views[4]!.number)).state).toBe('completed');
      expect(
        (await small.node.internals().executions.queues[0]!.getJobCounts('completed')).completed,
      ).toBeLessThanOrEqual(2);
    } finally {
      await small.node.stop();
      await deletePrefix(testClient(), small.node.settings.prefix);
    }
  });
});
