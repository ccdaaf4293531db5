/**
 * New signal and Semaphore from outside a procedure, on a real node: GET /v1/signals/:id, triggering a
 * signal over HTTP wakes the execution waiting on it (first trigger wins), Test semaphore over HTTP,
 * and the CLI's `signal`, `trigger` and `semaphore` with --json and their exit codes.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli.js';
import { EXIT } from '../../src/cli/exit.js';
import type { Io } from '../../src/cli/output.js';
import { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sync-api');
let node: SprocdNode;
let url: string;
let client: SprocdClient;

async function cli(args: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const io: Io = { out, err, stdin: Object.assign(new PassThrough(), { isTTY: false }) };
  const code = await run([...args, '--url', url], io);
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString('utf8') ?? '';
  return { code, stdout: text(out), stderr: text(err) };
}

/** Starts an execution that makes a signal and waits on it; answers its number and the signal's id. */
async function waiter(): Promise<{ number: number; id: string }> {
  const { number } = await client.execute('signal', {
    op: 'wait',
    timeoutMs: 30_000,
    description: 'from outside',
  });
  const id = await vi.waitFor(
    async () => {
      const progress = (await client.get(number)).progress as { signal?: string } | undefined;
      expect(progress?.signal).toBeTypeOf('string');
      return progress?.signal as string;
    },
    { timeout: 10_000 },
  );
  return { number, id };
}

beforeAll(async () => {
  ({ node, url } = await startInProcessNode(prefix));
  client = new SprocdClient({ url, fetch: checkedFetch(url) });
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('signals over HTTP', () => {
  it('reads a signal, and a trigger wakes the execution waiting on it; the first trigger wins', async () => {
    const { number, id } = await waiter();
    expect(await client.signal(id)).toEqual({ id, description: 'from outside', signaled: false });
    const first = await client.triggerSignal(id, { rows: 7 });
    expect(first).toEqual({
      triggered: true,
      signal: { id, description: 'from outside', signaled: true, result: { rows: 7 } },
    });
    const done = await vi.waitFor(
      async () => {
        const view = await client.get(number);
        expect(view.state).toBe('completed');
        return view;
      },
      { timeout: 10_000 },
    );
    expect(done.result).toMatchObject({ id, signaled: true, result: { rows: 7 } });
    const second = await client.triggerSignal(id, { rows: 8 });
    expect(second.triggered).toBe(false);
    expect(second.signal.result).toEqual({ rows: 7 });
  });

  it('answers 404 SIGNAL_NOT_FOUND for a signal that does not exist, and changes nothing', async () => {
    for (const id of ['no-such-signal', 'not a signal id!']) {
      await expect(client.signal(id)).rejects.toMatchObject({ status: 404, code: 'SIGNAL_NOT_FOUND' });
      await expect(client.triggerSignal(id)).rejects.toMatchObject({ status: 404, code: 'SIGNAL_NOT_FOUND' });
    }
  });

  it('refuses a trigger body that is not an object with a result', async () => {
    const { id } = await waiter();
    const res = await fetch(`${url}/v1/signals/${id}/trigger`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ result: 1, extra: true }),
    });
    expect(res.status).toBe(400);
    expect((await client.signal(id)).signaled).toBe(false);
    await client.triggerSignal(id);
    expect(await client.signal(id)).toMatchObject({ signaled: true, result: null });
  });
});

describe('Test semaphore over HTTP', () => {
  it('says whether an execution holds a semaphore', async () => {
    expect(await client.testSemaphore('api-sem')).toBe(false);
    const { number } = await client.execute('semaphore', { name: 'api-sem', holdMs: 30_000 });
    await vi.waitFor(async () => expect(await client.testSemaphore('api-sem')).toBe(true), {
      timeout: 10_000,
    });
    await client.abort(number);
    await vi.waitFor(async () => expect(await client.testSemaphore('api-sem')).toBe(false), {
      timeout: 10_000,
    });
  });
});

describe('the CLI', () => {
  it('signal, trigger and semaphore, with --json and the not-found exit code', async () => {
    const { id, number } = await waiter();
    const shown = await cli(['signal', id]);
    expect(shown.code).toBe(EXIT.ok);
    expect(shown.stdout).toBe(`signal ${id} (from outside): not signaled\n`);
    const fired = await cli(['trigger', id, '{"go":true}', '--json']);
    expect(fired.code).toBe(EXIT.ok);
    expect(JSON.parse(fired.stdout)).toMatchObject({ triggered: true, signal: { result: { go: true } } });
    expect((await cli(['trigger', id])).stdout).toBe(
      `signal ${id}: triggered already (result {"go":true} stays)\n`,
    );
    await vi.waitFor(async () => expect((await client.get(number)).state).toBe('completed'), {
      timeout: 10_000,
    });
    const missing = await cli(['signal', 'no-such-signal']);
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.stderr).toContain('SIGNAL_NOT_FOUND');
    const bad = await cli(['trigger', id, '{not json']);
    expect(bad.code).toBe(EXIT.usage);
    expect((await cli(['semaphore', 'cli-sem'])).stdout).toBe('semaphore cli-sem: free\n');
    expect(JSON.parse((await cli(['semaphore', 'cli-sem', '--json'])).stdout)).toEqual({
      name: 'cli-sem',
      held: false,
    });
  });
});
