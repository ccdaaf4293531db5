/**
 * Workers (issue 9: CALL WORKER, KILL WORKER) on real nodes in this process and the test Redis:
 * messages one at a time and in order, `ctx.worker.local` kept between them, kill while a message
 * runs, callWorker refused after an abort, bad input refused before anything is queued, and a
 * stopping node handing its worker over at once.
 */
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { workerCall, workerClaim, workerNext } from '../../src/redis/scripts.js';
import { callerSeen } from '../fixtures/worker-jobs/caller.js';
import { openGate, stepsSeen } from '../fixtures/worker-jobs/step.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const WAIT = { timeout: 15_000, interval: 20 };
const JOBS = { SPROCD_JOBS_DIR: path.join(FIXTURES, 'worker-jobs') };
const prefixes: string[] = [];
const nodes: SprocdNode[] = [];
let tags = 0;

function tag(): string {
  return `t${++tags}-${Date.now()}`;
}

async function start(p?: string, env: Record<string, string> = {}) {
  const prefix = p ?? uniquePrefix('wk');
  if (!prefixes.includes(prefix)) {
    prefixes.push(prefix);
  }
  const started = await startInProcessNode(prefix, { ...JOBS, ...env });
  nodes.push(started.node);
  return { ...started, prefix };
}

async function workerOf(client: SprocdClient, name: string) {
  return (await client.workers()).find((w) => w.name === name);
}

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const p of prefixes) {
    await deletePrefix(testClient(), p);
  }
  await closeTestClients();
});

describe('CALL WORKER', () => {
  it('is open to the lifecycle hooks: On Server Startup starts a worker, and KILL WORKER of none is no error', async () => {
    const { client } = await start(undefined, {
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'worker-lifecycle'),
    });
    await vi.waitFor(() => expect(stepsSeen('startup').map((s) => s.i)).toEqual([1, 2]), WAIT);
    expect(stepsSeen('startup')[0]).toMatchObject({ worker: 'started-at-startup', local: 1 });
    expect(await workerOf(client, 'never-called')).toBeUndefined();
  });

  it('runs one worker’s messages one at a time, in the order they were queued, keeping ctx.worker.local', async () => {
    const { client } = await start();
    const t = tag();
    const answers = [];
    for (let i = 1; i <= 30; i++) {
      answers.push(await client.callWorker('ordered', 'step', { tag: t, i }));
    }
    expect(answers[0]).toMatchObject({ worker: 'ordered', procedure: 'step' });
    expect(new Set(answers.map((a) => a.id)).size).toBe(30);
    await vi.waitFor(() => expect(stepsSeen(t)).toHaveLength(30), WAIT);
    const steps = stepsSeen(t);
    expect(steps.map((s) => s.i)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1));
    expect(steps.every((s) => s.running === 1)).toBe(true);
    // ctx.worker.local is one object for the worker's messages on its node.
    expect(steps.map((s) => s.local)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1));
    expect(steps.every((s) => s.worker === 'ordered' && s.attempt === 1 && s.number === 0)).toBe(true);
    await vi.waitFor(
      async () => expect(await workerOf(client, 'ordered')).toMatchObject({ processed: 30, pending: 0 }),
      WAIT,
    );
  });

  it('runs two workers side by side, each in its own order', async () => {
    const { client } = await start();
    const t = tag();
    for (let i = 1; i <= 10; i++) {
      await client.callWorker('left', 'step', { tag: t, i });
      await client.callWorker('right', 'step', { tag: t, i });
    }
    await vi.waitFor(() => expect(stepsSeen(t)).toHaveLength(20), WAIT);
    for (const name of ['left', 'right']) {
      const mine = stepsSeen(t).filter((s) => s.worker === name);
      expect(mine.map((s) => s.i)).toEqual(Array.from({ length: 10 }, (_, k) => k + 1));
      expect(mine.map((s) => s.local)).toEqual(Array.from({ length: 10 }, (_, k) => k + 1));
    }
  });

  it('queues from a procedure with ctx.callWorker; ctx.worker is undefined outside a worker message', async () => {
    const { client } = await start();
    const t = tag();
    const caller = await client.execute(
      'caller',
      { tag: t, worker: 'from-ctx', steps: [1, 2, 3] },
      { wait: 10_000 },
    );
    expect(caller.result).toEqual({ ok: true, worker: null });
    await vi.waitFor(() => expect(stepsSeen(t).map((s) => s.i)).toEqual([1, 2, 3]), WAIT);
    const plain = await client.execute('step', { tag: tag(), i: 1 }, { wait: 10_000 });
    expect(plain.result).toMatchObject({ worker: null, local: null });
  });

  it('goes on with the next message when one throws, counting it as failed', async () => {
    const { client } = await start();
    const t = tag();
    await client.callWorker('failing', 'step', { tag: t, i: 1, fail: true });
    await client.callWorker('failing', 'step', { tag: t, i: 2 });
    await vi.waitFor(() => expect(stepsSeen(t).map((s) => s.i)).toEqual([1, 2]), WAIT);
    await vi.waitFor(
      async () => expect(await workerOf(client, 'failing')).toMatchObject({ processed: 2, failed: 1 }),
      WAIT,
    );
  });

  it('is refused with ABORTED once the calling execution was aborted', async () => {
    const { client } = await start();
    const t = tag();
    const caller = await client.execute('caller', {
      tag: t,
      worker: 'after-abort',
      steps: [1],
      afterAbort: true,
    });
    await waitForState(client, caller.number, 'active');
    await client.abort(caller.number);
    await waitForState(client, caller.number, 'aborted');
    await vi.waitFor(() => expect(callerSeen(t)).toEqual({ code: 'ABORTED' }), WAIT);
    expect(await workerOf(client, 'after-abort')).toBeUndefined();
  });

  it('refuses a bad worker name, an unknown procedure and bad params before queueing anything', async () => {
    const { client, prefix } = await start();
    await expect(client.callWorker('$local', 'step', { tag: 'x', i: 1 })).rejects.toMatchObject({
      code: 'INVALID_NAME',
      status: 400,
    });
    await expect(client.callWorker('a\nb', 'step', { tag: 'x', i: 1 })).rejects.toMatchObject({
      code: 'INVALID_NAME',
    });
    await expect(client.callWorker('x'.repeat(256), 'step', { tag: 'x', i: 1 })).rejects.toMatchObject({
      code: 'INVALID_NAME',
    });
    await expect(client.callWorker('bad', 'nope', {})).rejects.toMatchObject({
      code: 'UNKNOWN_PROCEDURE',
      status: 404,
    });
    await expect(client.callWorker('bad', 'validated', { a: 'one', b: 2 })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      status: 400,
    });
    await expect(client.killWorker('$local')).rejects.toMatchObject({ code: 'INVALID_NAME' });
    expect(await client.workers()).toEqual([]);
    expect(await testClient().exists(createKeys(prefix).workers.mailbox('bad'))).toBe(0);
  });
});

describe('KILL WORKER', () => {
  it('drops the pending messages, lets the current one finish, and ends the worker', async () => {
    const { client, prefix } = await start();
    const t = tag();
    await client.callWorker('doomed', 'step', { tag: t, i: 1, gate: true });
    for (let i = 2; i <= 5; i++) {
      await client.callWorker('doomed', 'step', { tag: t, i });
    }
    await vi.waitFor(
      async () => expect((await workerOf(client, 'doomed'))?.current?.procedure).toBe('step'),
      WAIT,
    );
    expect(await workerOf(client, 'doomed')).toMatchObject({ pending: 4, current: { attempt: 1 } });
    expect(await client.killWorker('doomed')).toEqual({ worker: 'doomed', outcome: 'ending', dropped: 4 });
    expect(await workerOf(client, 'doomed')).toMatchObject({ pending: 0, ending: true });
    await vi.waitFor(() => expect(openGate(t, 1)).toBe(true), WAIT);
    await vi.waitFor(async () => expect(await workerOf(client, 'doomed')).toBeUndefined(), WAIT);
    expect(stepsSeen(t).map((s) => s.i)).toEqual([1]);
    const keys = createKeys(prefix).workers;
    expect(
      await testClient().exists(keys.state('doomed'), keys.mailbox('doomed'), keys.owner('doomed')),
    ).toBe(0);
    expect(await testClient().zscore(keys.index, 'doomed')).toBeNull();

    // A later call makes a new worker of that name: its local starts empty.
    await client.callWorker('doomed', 'step', { tag: t, i: 6 });
    await vi.waitFor(() => expect(stepsSeen(t).map((s) => s.i)).toEqual([1, 6]), WAIT);
    expect(stepsSeen(t)[1]?.local).toBe(1);
  });

  it('keeps a call made after the kill for a new worker of that name, after the current message', async () => {
    const { client } = await start();
    const t = tag();
    await client.callWorker('reborn', 'step', { tag: t, i: 1, gate: true });
    await client.callWorker('reborn', 'step', { tag: t, i: 2 });
    await vi.waitFor(async () => expect((await workerOf(client, 'reborn'))?.current).toBeDefined(), WAIT);
    await client.killWorker('reborn');
    await client.callWorker('reborn', 'step', { tag: t, i: 3 });
    await vi.waitFor(() => expect(openGate(t, 1)).toBe(true), WAIT);
    await vi.waitFor(() => expect(stepsSeen(t).map((s) => s.i)).toEqual([1, 3]), WAIT);
    expect(stepsSeen(t).map((s) => s.local)).toEqual([1, 1]);
    await vi.waitFor(
      async () => expect(await workerOf(client, 'reborn')).toMatchObject({ processed: 1, pending: 0 }),
      WAIT,
    );
  });

  it('ends an idle worker at once; a missing one is WORKER_NOT_FOUND over HTTP and nothing in ctx', async () => {
    const { client } = await start();
    const t = tag();
    await client.callWorker('idle', 'step', { tag: t, i: 1 });
    await vi.waitFor(() => expect(stepsSeen(t)).toHaveLength(1), WAIT);
    await vi.waitFor(
      async () => expect(await workerOf(client, 'idle')).toMatchObject({ processed: 1 }),
      WAIT,
    );
    expect(await client.killWorker('idle')).toEqual({ worker: 'idle', outcome: 'ended', dropped: 0 });
    expect(await workerOf(client, 'idle')).toBeUndefined();
    await expect(client.killWorker('idle')).rejects.toMatchObject({ code: 'WORKER_NOT_FOUND', status: 404 });
    const caller = await client.execute(
      'caller',
      { tag: tag(), worker: 'w', kill: 'never-called' },
      { wait: 10_000 },
    );
    expect(caller.result).toEqual({ ok: true, worker: null });
    // Killed from a procedure: a new call makes a new worker, whose local starts again.
    await client.callWorker('idle', 'step', { tag: t, i: 2 });
    await vi.waitFor(() => expect(stepsSeen(t).map((s) => s.local)).toEqual([1, 1]), WAIT);
  });
});

describe('CALL WORKER ownership', () => {
  it('lets one of many racing claims take a worker, and only its token take messages', async () => {
    const prefix = uniquePrefix('wk-race');
    prefixes.push(prefix);
    const keys = createKeys(prefix);
    const redis = testClient();
    const message = JSON.stringify({ i: 'm1', p: 'step', a: { tag: 'race', i: 1 }, q: Date.now() });
    expect(await workerCall(redis, keys, 'raced', message)).toBe(1);
    const tokens = Array.from({ length: 8 }, (_, i) => `token-${i}@node-${i}`);
    const won = await Promise.all(tokens.map((t) => workerClaim(redis, keys, 'raced', t, 10_000)));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = tokens[won.indexOf(true)] as string;
    expect(await redis.get(keys.workers.owner('raced'))).toBe(winner);
    const loser = tokens.find((t) => t !== winner) as string;
    expect(await workerNext(redis, keys, 'raced', loser)).toEqual({ code: -1 });
    expect(await workerNext(redis, keys, 'raced', winner)).toEqual({ code: 1, message });
    // Taken over (say the winner died): the same message again, its attempt raised.
    await redis.del(keys.workers.owner('raced'));
    expect(await workerClaim(redis, keys, 'raced', loser, 10_000)).toBe(true);
    expect(await workerNext(redis, keys, 'raced', loser)).toEqual({ code: 2, message });
  });
});

describe('CALL WORKER across a stop', () => {
  it('a stopping node gives its worker back at once: the message it could not finish runs again on the other node', async () => {
    const first = await start(undefined, {
      SPROCD_EXECUTION_LEASE_MS: '60000',
      SPROCD_SHUTDOWN_GRACE_MS: '300',
    });
    const t = tag();
    await first.client.callWorker('moving', 'step', { tag: t, i: 1 });
    await vi.waitFor(() => expect(stepsSeen(t)).toHaveLength(1), WAIT);
    await first.client.callWorker('moving', 'step', { tag: t, i: 2, gate: true });
    await first.client.callWorker('moving', 'step', { tag: t, i: 3 });
    await vi.waitFor(
      async () => expect((await workerOf(first.client, 'moving'))?.current).toBeDefined(),
      WAIT,
    );
    const second = await start(first.prefix, { SPROCD_EXECUTION_LEASE_MS: '60000' });
    // The lease is a minute: only the give-back can move the worker within the test.
    await first.node.stop();
    // The first node's run of message 2 (attempt 1) was given back while its code waited at the gate;
    // inline code is not stopped, so when the gate opens that run it records itself too. The steps that
    // count are the others: message 1 there, and messages 2 (attempt 2) and 3 on the node that took the
    // worker over.
    const counted = () => stepsSeen(t).filter((s) => !(s.i === 2 && s.attempt === 1));
    await vi.waitFor(async () => {
      openGate(t, 2);
      expect(counted().map((s) => s.i)).toEqual([1, 2, 3]);
    }, WAIT);
    const [one, two, three] = counted();
    expect(one).toMatchObject({ node: first.node.name, attempt: 1, local: 1 });
    expect(two).toMatchObject({ node: second.node.name, attempt: 2, local: 1 });
    expect(three).toMatchObject({ node: second.node.name, attempt: 1, local: 2 });
    expect(await workerOf(second.client, 'moving')).toMatchObject({ node: second.node.name, processed: 3 });
  });
});
