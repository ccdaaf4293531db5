/**
 * The typed client (`sprocd/client`) against the API on fakes, over real HTTP: every route, errors
 * with their code and status, no answer, and the types: params and result read from a procedure's
 * defineProcedure, through a type argument or a map of procedures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  SprocdApiError,
  SprocdClient,
  type ExecutionOf,
  type JsonValue,
  type ParamsOf,
  type ResultOf,
} from 'sprocd/client';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type validated from './fixtures/jobs/validated.js';
import type { ErrorCode } from '../src/errors.js';
import type hello from '../jobs/hello.js';
import { FakeExecutions, fakeApi, fakeContext } from './support/api.js';
import { ROOT } from './support/node.js';
import { checkedFetch } from './support/openapi.js';

const TOKEN = 'client-test-token-0123456789';

/** Procedure types as a caller of the client declares them. */
type Procedures = { hello: typeof hello; validated: typeof validated };

async function serve(executions = new FakeExecutions()) {
  const app = await fakeApi(
    fakeContext({
      executions: () => executions,
      procedures: () => [{ name: 'validated', description: 'adds two integers' }],
      liveNodes: async () => [
        {
          node: 'n1',
          host: 'h',
          pid: 1,
          startedAt: new Date(0).toISOString(),
          heartbeatAt: new Date().toISOString(),
          active: 0,
          concurrency: 4,
          procedures: ['validated'],
        },
      ],
      settings: { host: '127.0.0.1', port: 0, token: TOKEN, bodyLimit: 64 * 1024 },
    }),
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const client = new SprocdClient<Procedures>({ url, token: TOKEN, fetch: checkedFetch(url) });
  return { app, url, client, executions };
}

describe('SprocdClient', () => {
  it('calls every route and answers what the API answers', async () => {
    const { client, executions } = await serve();
    const queued = await client.execute('validated', { a: 1, b: 2 }, { name: 'sum', priority: 2 });
    expect(queued).toMatchObject({ number: 1, procedure: 'validated', name: 'sum', state: 'waiting' });
    expect(executions.requests).toEqual([
      { procedure: 'validated', params: { a: 1, b: 2 }, options: { name: 'sum', priority: 2 } },
    ]);
    const done = await client.execute('validated', { a: 2, b: 2 }, { wait: 1000 });
    expect(done).toMatchObject({ state: 'completed', result: 'done' });
    expect(await client.get(1)).toMatchObject({ number: 1 });
    expect((await client.list({ state: 'waiting', limit: 5 })).map((e) => e.number)).toEqual([1]);
    expect(executions.filters.at(-1)).toEqual({ state: 'waiting', limit: 5 });
    expect(await client.listPage()).toMatchObject({ items: expect.any(Array) });
    expect(await client.abort(1)).toMatchObject({ number: 1 });
    expect(await client.wake(1)).toMatchObject({ number: 1 });
    expect(executions.signals).toEqual([
      { op: 'abort', number: 1 },
      { op: 'wake', number: 1 },
    ]);
    expect(await client.procedures()).toEqual([{ name: 'validated', description: 'adds two integers' }]);
    expect((await client.nodes()).map((n) => n.node)).toEqual(['n1']);
    expect(await client.health()).toEqual({ status: 'ok', state: 'ready', node: 'fake-node' });
    expect(await client.ready()).toEqual({ status: 'ready' });
    expect(await client.metrics()).toMatch(/sprocd_up 1/);
    expect(await client.openapi()).toMatchObject({ openapi: '3.1.0' });
  });

  it('reads the overview and the storage views, and writes an entry', async () => {
    const writes: unknown[] = [];
    const counts = { waiting: 1, delayed: 0, active: 2, completed: 3, failed: 0, aborted: 0 };
    const app = await fakeApi(
      fakeContext({
        stats: () => ({
          counts: async () => counts,
          series: async () => [{ t: 0, completed: 3, failed: 0, aborted: 0, p50Ms: 5, p99Ms: 9 }],
          systemEvents: async () => [{ type: 'node.started', at: new Date(0).toISOString(), node: 'n1' }],
        }),
        storageAdmin: () => ({
          entries: async () => ({ items: [{ key: 'config', size: 12 }] }),
          replace: async (...args) => {
            writes.push(args);
          },
        }),
      }),
    );
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const client = new SprocdClient({ url, fetch: checkedFetch(url) });
    expect(await client.stats({ minutes: 5 })).toMatchObject({ counts, series: [{ p99Ms: 9 }] });
    expect(await client.systemEvents({ limit: 1 })).toEqual([
      { type: 'node.started', at: new Date(0).toISOString(), node: 'n1' },
    ]);
    expect(await client.storageEntries()).toEqual([{ key: 'config', size: 12 }]);
    expect(await client.writeStorage('config', { greeting: 'Hi' }, { expect: null })).toEqual({
      key: 'config',
      size: 17,
    });
    expect(writes).toEqual([['config', { greeting: 'Hi' }, null]]);
  });

  it('retries, removes, acts in bulk, reads timelines, schedules and backup files', async () => {
    const calls: unknown[][] = [];
    const view = {
      number: 8,
      id: 'id-8',
      procedure: 'p',
      name: '',
      state: 'waiting' as const,
      params: null,
      attempt: 0,
      createdAt: new Date(0).toISOString(),
      retryOf: 7,
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-client-'));
    const file = path.join(dir, 'sprocd-3.backup');
    fs.writeFileSync(file, Buffer.from([1, 2, 3, 250]));
    const app = await fakeApi(
      fakeContext({
        executionAdmin: () => ({
          retry: async (n: number) => (calls.push(['retry', n]), view),
          remove: async (n: number) => {
            calls.push(['remove', n]);
          },
          bulk: async (action, filter, dryRun) => (
            calls.push(['bulk', action, filter, dryRun]),
            { action, matched: 4 }
          ),
          timeline: async () => ({ items: [{ at: new Date(0).toISOString(), type: 'queued' as const }] }),
        }),
        schedules: async () => [
          {
            id: 'backup',
            kind: 'backup' as const,
            cron: '0 3 * * *',
            next: [new Date(0).toISOString()],
            missed: 0,
          },
        ],
        backupRecord: async (number) => ({ number, node: 'fake-node', file }),
      }),
    );
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const client = new SprocdClient({ url, fetch: checkedFetch(url) });
    expect(await client.retry(7)).toMatchObject({ number: 8, retryOf: 7 });
    expect(await client.remove(7)).toBeUndefined();
    expect(await client.bulk({ action: 'abort', filter: { procedure: 'p' }, dryRun: true })).toEqual({
      action: 'abort',
      matched: 4,
    });
    expect(calls).toEqual([
      ['retry', 7],
      ['remove', 7],
      ['bulk', 'abort', { procedure: 'p' }, true],
    ]);
    expect((await client.timeline(8)).items.map((e) => e.type)).toEqual(['queued']);
    expect((await client.schedules()).map((s) => s.kind)).toEqual(['backup']);
    expect([...(await client.backupFile(3))]).toEqual([1, 2, 3, 250]);
  });

  it('throws SprocdApiError with the code, status and details the API sent', async () => {
    const { client } = await serve();
    const missing = await client.get(42).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(SprocdApiError);
    expect(missing).toMatchObject({ code: 'EXECUTION_NOT_FOUND', status: 404, details: { number: 42 } });
    if (missing instanceof SprocdApiError) {
      expectTypeOf(missing.code).toEqualTypeOf<ErrorCode | 'UNREACHABLE' | 'BAD_RESPONSE'>();
    }
    await expect(client.execute('validated', { a: 1, b: 2 }, { delayMs: -1 })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      status: 400,
      message: expect.stringMatching(/^Bad body: delayMs/),
    });
    // The session is not ready on this fake node.
    await expect(client.session()).rejects.toMatchObject({ code: 'NOT_READY', status: 503 });
  });

  it('says UNREACHABLE when no node answers, and BAD_RESPONSE for an answer that is not the API', async () => {
    const down = new SprocdClient({ url: 'http://127.0.0.1:1', token: TOKEN });
    await expect(down.get(1)).rejects.toMatchObject({
      code: 'UNREACHABLE',
      status: 0,
      message: expect.stringMatching(/cannot reach sprocd at http:\/\/127\.0\.0\.1:1/),
    });
    const { url } = await serve();
    const wrongToken = new SprocdClient({ url, token: 'wrong-token-wrong-token' });
    await expect(wrongToken.nodes()).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    const proxy = new SprocdClient({
      url,
      fetch: async () => new Response('<html>bad gateway</html>', { status: 502 }),
    });
    await expect(proxy.nodes()).rejects.toMatchObject({ code: 'BAD_RESPONSE', status: 502 });
  });

  it('takes SPROCD_URL and SPROCD_TOKEN from the environment', () => {
    const before = { url: process.env.SPROCD_URL, token: process.env.SPROCD_TOKEN };
    process.env.SPROCD_URL = 'http://node.example:9000/';
    try {
      expect(new SprocdClient().url).toBe('http://node.example:9000');
    } finally {
      if (before.url === undefined) {
        delete process.env.SPROCD_URL;
      } else {
        process.env.SPROCD_URL = before.url;
      }
    }
  });
});

describe('types', () => {
  it("types execute's params and result from the procedure's defineProcedure", async () => {
    const { client } = await serve();
    const run = await client.execute('validated', { a: 1, b: 2 });
    expectTypeOf(run).toEqualTypeOf<ExecutionOf<typeof validated>>();
    expectTypeOf(run.result).toEqualTypeOf<{ sum: number } | undefined>();
    // hello's `who` has a default: a request may leave it out, or the params altogether.
    expectTypeOf<ParamsOf<typeof hello>>().toEqualTypeOf<{ who?: string | undefined }>();
    expectTypeOf<ResultOf<typeof hello>>().toEqualTypeOf<{ greeting: string; count: number; by: number }>();
    const greet = () => client.execute('hello');
    expectTypeOf(greet).returns.resolves.toEqualTypeOf<ExecutionOf<typeof hello>>();
    // @ts-expect-error b is missing
    await client.execute('validated', { a: 1 }).catch(() => undefined);
    // @ts-expect-error a must be a number
    await client.execute('validated', { a: '1', b: 2 }).catch(() => undefined);
    // @ts-expect-error validated needs its params
    await client.execute('validated').catch(() => undefined);
    // One call typed by a type argument, on a client without a map.
    const plain = new SprocdClient({ url: client.url, token: TOKEN });
    const typed = () => plain.execute<typeof validated>('validated', { a: 1, b: 2 });
    expectTypeOf(typed).returns.resolves.toEqualTypeOf<ExecutionOf<typeof validated>>();
    // @ts-expect-error the type argument's params apply
    const wrong = () => plain.execute<typeof validated>('validated', { a: 1 });
    // A procedure the client does not know: any params, a JSON result.
    const other = () => plain.execute('anything', [1, 'x']);
    expectTypeOf(other).returns.resolves.toHaveProperty('result').toEqualTypeOf<JsonValue | undefined>();
    expect([greet, typed, wrong, other].every((f) => typeof f === 'function')).toBe(true);
    expect(run.number).toBeGreaterThan(0);
  });
});

describe('the package entry', () => {
  it('exports ./client with its types, built from src/client/index.ts', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; import: string }>;
    };
    expect(pkg.exports['./client']).toEqual({
      types: './dist/client/index.d.ts',
      import: './dist/client/index.js',
    });
    expect(fs.existsSync(path.join(ROOT, 'src/client/index.ts'))).toBe(true);
  });
});
