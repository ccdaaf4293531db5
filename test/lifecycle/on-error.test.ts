/**
 * 4D's ON ERR CALL, on a real node in this process against the real test Redis: lifecycle/onError
 * (the server's handler: once per execution that failed for good, with its view and error; not for a
 * retried attempt, an abort or a success; its own throw logged, changing nothing) and ctx.onErrCall
 * (a procedure's handler: swallow, rethrow, replace, clear; it never sees an abort or a time-out).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { loadSettings } from '../../src/config.js';
import { ModuleLoadError } from '../../src/errors.js';
import { LifecycleHooks } from '../../src/lifecycle/hooks.js';
import type { OnErrorInfo } from '../../src/lifecycle/on-error.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, ROOT, startInProcessNode, testEnv } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('onerr');
let node: SprocdNode;
let client: SprocdClient;
/** The node's log lines (what it would write to stdout). */
const lines: Record<string, unknown>[] = [];

type Call = OnErrorInfo & { node: string };

/** What ctx.onErrCall handlers of waiter.ts and slowpoke.ts counted, by execution number. */
const errCallsSeen = (): Record<number, number> =>
  (globalThis as { errCallsSeen?: Record<number, number> }).errCallsSeen ?? {};

beforeAll(async () => {
  const settings = loadSettings(
    testEnv(prefix, {
      LOG_LEVEL: 'info',
      SPROCD_CONCURRENCY: '4',
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'errcall-jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-onerror'),
    }),
    ROOT,
  );
  const destination = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
  node = new SprocdNode(settings, createLogger('info', { destination }));
  await node.start();
  client = new SprocdClient({ url: node.url, token: '', fetch: checkedFetch(node.url) });
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** The onError calls recorded for execution `number` (none: undefined). */
async function callsOf(number: number): Promise<Call[] | undefined> {
  return (await node.session.storage.get<{ calls: Call[] }>(`onError:${number}`))?.calls;
}

/** Waits until onError has recorded a call for `number`, and returns the calls. */
async function recordedCalls(number: number): Promise<Call[]> {
  let calls: Call[] | undefined;
  await expect
    .poll(async () => (calls = await callsOf(number))?.length ?? 0, { timeout: 15_000 })
    .toBeGreaterThan(0);
  return calls ?? [];
}

/**
 * A later failure's onError call has been recorded: any call onError was going to make for an
 * execution that ended before it has been made by then (each starts when its execution is filed).
 */
async function afterALaterFailure(): Promise<void> {
  const later = await client.execute('boom', {});
  await waitForState(client, later.number, 'failed');
  expect(await recordedCalls(later.number)).toHaveLength(1);
}

describe('ON ERR CALL of the server (lifecycle/onError)', () => {
  it('ON ERR CALL is called once, with the execution as GET /v1/executions/:n shows it and its error', async () => {
    const { number } = await client.execute('boom', {});
    await waitForState(client, number, 'failed');
    const [call] = await recordedCalls(number);
    expect(call?.execution).toEqual(await client.get(number));
    expect(call?.execution).toMatchObject({ number, procedure: 'boom', state: 'failed', attempt: 1 });
    expect(call?.error).toMatchObject({ name: 'Error', message: 'boom', code: 'BOOM', attempts: 1 });
    expect(call?.error.stack).toMatch(/^Error: boom\n\s+at /);
    expect(call?.node).toBe(node.name);
    await afterALaterFailure();
    expect(await callsOf(number)).toHaveLength(1);
  });

  it('ON ERR CALL is called once after the last of 3 attempts, not for the attempts retried before', async () => {
    const { number } = await client.execute('flaky', null);
    await waitForState(client, number, 'failed');
    const calls = await recordedCalls(number);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.execution).toMatchObject({ state: 'failed', attempt: 3, attempts: 3 });
    expect(calls[0]?.error).toMatchObject({ message: 'failed attempt 3', code: 'FLAKY', attempts: 3 });
    // Each attempt looked: no onError call had been made for its execution yet.
    const seen = await node.session.storage.get<{ seen: unknown[] }>(`flaky:${number}`);
    expect(seen?.seen).toEqual([
      { attempt: 1, onErrorCalls: 0 },
      { attempt: 2, onErrorCalls: 0 },
      { attempt: 3, onErrorCalls: 0 },
    ]);
    await afterALaterFailure();
    expect(await callsOf(number)).toHaveLength(1);
  });

  it('ON ERR CALL is called once for an execution that fails unrecoverably with attempts left', async () => {
    const { number } = await client.execute('unrecoverable', null);
    await waitForState(client, number, 'failed');
    const calls = await recordedCalls(number);
    expect(calls[0]?.error).toMatchObject({ message: 'cannot go on', attempts: 1 });
    expect(calls[0]?.execution).toMatchObject({ state: 'failed', attempt: 1, attempts: 3 });
    await afterALaterFailure();
    expect(await callsOf(number)).toHaveLength(1);
  });

  it('ON ERR CALL is not called for an abort (an abort is not an error)', async () => {
    const { number } = await client.execute('waiter', null);
    await waitForState(client, number, 'active');
    await client.abort(number);
    await waitForState(client, number, 'aborted');
    await afterALaterFailure();
    expect(await callsOf(number)).toBeUndefined();
  });

  it('ON ERR CALL is not called for an execution that completes', async () => {
    const { number } = await client.execute('ok', { a: 1 });
    expect((await waitForState(client, number, 'completed')).result).toEqual({ ok: { a: 1 } });
    await afterALaterFailure();
    expect(await callsOf(number)).toBeUndefined();
  });

  it('ON ERR CALL throwing is logged with the execution number and leaves the execution failed as it was', async () => {
    const { number } = await client.execute('boom', { hookThrows: true });
    const failed = await waitForState(client, number, 'failed');
    expect(await recordedCalls(number)).toHaveLength(1);
    await expect
      .poll(
        () => lines.find((l) => l.msg === 'hook threw' && l.hook === 'onError' && l.execution === number),
        {
          timeout: 15_000,
        },
      )
      .toMatchObject({ level: 50, err: { message: `onError refused execution ${number}` } });
    expect(await client.get(number)).toEqual(failed);
    expect(failed.error).toMatchObject({ code: 'BOOM', message: 'boom' });
  });

  it('ON ERR CALL still running when its node stops is waited for before the node lets go of Redis', async () => {
    const slowPrefix = uniquePrefix('onerr-slow');
    const env = {
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'errcall-jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-onerror-slow'),
    };
    let slow = await startInProcessNode(slowPrefix, env);
    try {
      const { number } = await slow.client.execute('boom', {});
      await waitForState(slow.client, number, 'failed');
      await expect
        .poll(() => slow.node.session.storage.get(`onErrorStarted:${number}`), { timeout: 15_000 })
        .toEqual({ started: true });
      await slow.node.stop();
      // Read back on the same deployment by a node without the hook.
      slow = await startInProcessNode(slowPrefix, { SPROCD_JOBS_DIR: env.SPROCD_JOBS_DIR });
      expect(await slow.node.session.storage.get(`onErrorEnded:${number}`)).toEqual({ signalled: true });
    } finally {
      await slow.node.stop();
      await deletePrefix(testClient(), slowPrefix);
    }
  });

  it('refuses a lifecycle/onError file without a default function, as for the other hooks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-onerror-'));
    try {
      fs.writeFileSync(path.join(dir, 'onError.mjs'), 'export default 42;\n');
      const hooks = new LifecycleHooks(dir);
      const err = await hooks.load().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModuleLoadError);
      expect((err as Error).message).toContain(
        'default export must be an async function (ctx, { execution, error }) => ...',
      );
      fs.writeFileSync(path.join(dir, 'onError.mjs'), 'export default async () => "ran";\n');
      await hooks.load();
      expect(hooks.has('onError')).toBe(true);
      expect(await hooks.run('onError', pino({ level: 'silent' }), () => ({}) as never)).toBe('ran');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ON ERR CALL in a procedure (ctx.onErrCall)', () => {
  const run = async (mode: string, state: 'completed' | 'failed') => {
    const { number } = await client.execute('errcall', { mode });
    return waitForState(client, number, state);
  };

  it('ON ERR CALL swallows a rejected ctx call: the execution completes with what the handler returned', async () => {
    const done = await run('swallow', 'completed');
    expect(done.result).toEqual({
      swallowed: 'ctx.progress takes a number from 0 to 100 or a JSON object.',
      name: 'TypeError',
      attempt: 1,
    });
    await afterALaterFailure();
    expect(await callsOf(done.number)).toBeUndefined();
  });

  it('ON ERR CALL returning nothing completes the execution with null', async () => {
    expect((await run('undefined', 'completed')).result).toBeNull();
  });

  it('ON ERR CALL may be async, and may be set after the run has awaited', async () => {
    expect((await run('async', 'completed')).result).toEqual({ later: 'boom' });
    expect((await run('late', 'completed')).result).toEqual({ late: 'boom' });
  });

  it('ON ERR CALL rethrowing fails the execution as usual, retries included', async () => {
    const failed = await run('rethrow', 'failed');
    expect(failed.error).toMatchObject({ name: 'Error', message: 'boom', code: 'BOOM' });
    expect(failed.attempt).toBe(2);
    const [call] = await recordedCalls(failed.number);
    expect(call?.error).toMatchObject({ code: 'BOOM', attempts: 2 });
  });

  it('ON ERR CALL throwing another error fails the execution with that error', async () => {
    const failed = await run('replace', 'failed');
    expect(failed.error).toMatchObject({
      message: `replaced boom in execution ${failed.number}`,
      code: 'REPLACED',
    });
  });

  it('ON ERR CALL cleared with null no longer sees the error', async () => {
    const failed = await run('clear', 'failed');
    expect(failed.error).toMatchObject({ message: 'boom', code: 'BOOM' });
  });

  it('ON ERR CALL takes a function, null or undefined only', async () => {
    const failed = await run('invalid', 'failed');
    expect(failed.error).toMatchObject({
      name: 'TypeError',
      message: 'ctx.onErrCall takes a function, or undefined or null to clear the handler.',
    });
  });

  it('ON ERR CALL does not see an abort: the execution is aborted', async () => {
    const { number } = await client.execute('waiter', { errCall: true });
    await waitForState(client, number, 'active');
    await client.abort(number);
    const aborted = await waitForState(client, number, 'aborted');
    expect(aborted.error).toMatchObject({ code: 'ABORTED' });
    // The handler would run synchronously when the procedure's ctx.delay rejects, before the abort is filed.
    expect(errCallsSeen()[number]).toBeUndefined();
  });

  it('ON ERR CALL does not see a time-out: the execution fails with EXECUTION_TIMEOUT', async () => {
    const { number } = await client.execute('slowpoke', null);
    const failed = await waitForState(client, number, 'failed');
    expect(failed.error).toMatchObject({ code: 'EXECUTION_TIMEOUT' });
    expect(errCallsSeen()[number]).toBeUndefined();
    // A time-out is an error of the execution: the server's ON ERR CALL sees it.
    const [call] = await recordedCalls(number);
    expect(call?.error).toMatchObject({ code: 'EXECUTION_TIMEOUT', attempts: 1 });
  });
});
