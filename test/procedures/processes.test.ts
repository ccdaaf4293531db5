/**
 * ctx.processes (issue 9): 4D's Process number, Process state, Process info, Process activity,
 * DELAY PROCESS, ABORT PROCESS BY ID, PAUSE PROCESS and RESUME PROCESS on other executions, by number,
 * on a real node and Redis, and the same over HTTP. As in 4D, a missing or finished execution makes
 * them do nothing.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { PROCESS_STATE, stateCode } from '../../src/procedures/processes.js';
import { PAUSE_FIELD, bullQueueKeys, executionJobKey } from '../../src/redis/bullmq-internals.js';
import { numberOfJobId } from '../../src/redis/keys.js';
import type { ShardKeys } from '../../src/redis/shards.js';
import type { ExecutionView, JsonValue, ProcessDetails } from '../../src/types.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('proc');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'process-jobs'),
    SPROCD_CONCURRENCY: '8',
  }));
});

afterAll(async () => {
  await node.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** Runs ctx.processes.<op> in an execution and answers its result. */
async function inspect(params: Record<string, JsonValue>): Promise<unknown> {
  const view = await client.execute('inspect', params);
  return (await waitForState(client, view.number, 'completed')).result;
}

async function active(procedure: string, params: JsonValue, options = {}): Promise<number> {
  const view = await client.execute(procedure, params, options);
  await waitForState(client, view.number, 'active');
  return view.number;
}

describe('Process state and Process info', () => {
  it('answer 4D codes: 1 in ctx.delay or a delayed start, 0 executing, -1 aborted, -100 finished or missing', async () => {
    const napping = await active('sleeper', { ms: 60_000 }, { name: 'nap' });
    const working = await active('busy', { ms: 60_000 });
    const later = (await client.execute('sleeper', { ms: 0 }, { delayMs: 600_000 })).number;
    const done = (await client.execute('sleeper', { ms: 0 })).number;
    await waitForState(client, done, 'completed');

    expect(await inspect({ op: 'state', target: napping })).toBe(PROCESS_STATE.delayed);
    expect(await inspect({ op: 'state', target: working })).toBe(PROCESS_STATE.executing);
    expect(await inspect({ op: 'state', target: later })).toBe(PROCESS_STATE.delayed);
    expect(await inspect({ op: 'state', target: done })).toBe(PROCESS_STATE.doesNotExist);
    expect(await inspect({ op: 'state', target: 987_654_321 })).toBe(PROCESS_STATE.doesNotExist);

    expect(await inspect({ op: 'info', target: napping })).toMatchObject({
      number: napping,
      name: 'nap',
      procedure: 'sleeper',
      state: 'active',
      code: 1,
      node: node.name,
      attempt: 1,
    });
    expect(await inspect({ op: 'info', target: 987_654_321 })).toBeNull();

    await client.abort(working);
    await waitForState(client, working, 'aborted');
    expect(await inspect({ op: 'state', target: working })).toBe(PROCESS_STATE.aborted);
    await client.abort(napping);
    await client.abort(later);
  });

  it('map every state of the API to its code (4 for one waiting to start)', () => {
    const view = (state: ExecutionView['state']) => ({ state }) as ExecutionView;
    expect(stateCode(view('waiting'), false)).toBe(4);
    expect(stateCode(view('active'), false)).toBe(0);
    expect(stateCode(view('active'), true)).toBe(1);
    expect(stateCode(view('delayed'), false)).toBe(1);
    expect(stateCode(view('aborted'), false)).toBe(-1);
    expect(stateCode(view('completed'), false)).toBe(-100);
    expect(stateCode(view('failed'), false)).toBe(-100);
    expect(stateCode(undefined, false)).toBe(-100);
    // Paused wins over every unfinished state, never over a finished one.
    for (const state of ['waiting', 'delayed', 'active'] as const) {
      expect(stateCode(view(state), true, true)).toBe(5);
    }
    expect(stateCode(view('aborted'), false, true)).toBe(-1);
    expect(stateCode(view('completed'), false, true)).toBe(-100);
  });
});

describe('Process number and Process activity', () => {
  it('find the live execution of a process name (0 for none), and list the live executions', async () => {
    const napping = await active('sleeper', { ms: 60_000 }, { name: 'nap-two' });
    const later = (await client.execute('sleeper', { ms: 0 }, { delayMs: 600_000, name: 'later-one' }))
      .number;
    expect(await inspect({ op: 'number', name: 'nap-two' })).toBe(napping);
    expect(await inspect({ op: 'number', name: 'later-one' })).toBe(later);
    expect(await inspect({ op: 'number', name: 'nobody-has-this' })).toBe(0);

    const activity = (await inspect({ op: 'activity' })) as ProcessDetails[];
    const numbers = activity.map((p) => p.number);
    expect(numbers).toContain(napping);
    expect(numbers).toContain(later);
    expect(activity.find((p) => p.number === later)).toMatchObject({
      state: 'delayed',
      code: 1,
      name: 'later-one',
    });
    // An active one asleep in ctx.delay: read from its sleep mark.
    expect(activity.find((p) => p.number === napping)).toMatchObject({
      state: 'active',
      code: 1,
      name: 'nap-two',
    });
    await client.abort(napping);
    await client.abort(later);
    await waitForState(client, napping, 'aborted');
    expect(await inspect({ op: 'number', name: 'nap-two' })).toBe(0);
  });
});

describe('DELAY PROCESS and ABORT PROCESS BY ID', () => {
  it("replace another execution's ctx.delay (0 ends it) and move a delayed start", async () => {
    const long = await active('sleeper', { ms: 600_000 });
    expect(await inspect({ op: 'delay', target: long, ms: 200 })).toBe('done');
    const ended = await waitForState(client, long, 'completed');
    expect((ended.result as { slept: number }).slept).toBeLessThan(60_000);

    const other = await active('sleeper', { ms: 600_000 });
    await inspect({ op: 'delay', target: other, ms: 0 });
    await waitForState(client, other, 'completed');

    const later = (await client.execute('sleeper', { ms: 0 }, { delayMs: 600_000 })).number;
    await inspect({ op: 'delay', target: later, ms: 100 });
    await waitForState(client, later, 'completed');
  });

  it('over HTTP (POST /v1/executions/:n/delay, the client, `sprocd delay`): 404 missing, 409 finished', async () => {
    const long = await active('sleeper', { ms: 600_000 });
    expect((await client.delay(long, 100)).number).toBe(long);
    await waitForState(client, long, 'completed');
    await expect(client.delay(long, 100)).rejects.toMatchObject({ status: 409, code: 'EXECUTION_FINISHED' });
    await expect(client.delay(987_654_321, 100)).rejects.toMatchObject({ status: 404 });
  });

  it('abort another execution, and do nothing for a missing or finished one', async () => {
    const napping = await active('sleeper', { ms: 600_000 });
    expect(await inspect({ op: 'abort', target: napping })).toBe('done');
    await waitForState(client, napping, 'aborted');
    expect(await inspect({ op: 'abort', target: napping })).toBe('done');
    expect(await inspect({ op: 'delay', target: napping, ms: 10 })).toBe('done');
    expect(await inspect({ op: 'abort', target: 987_654_321 })).toBe('done');
    expect(await inspect({ op: 'delay', target: 987_654_321, ms: 10 })).toBe('done');
  });
});

/** Waits `ms` of real time: long enough for work the execution would have done if it were not held. */
const pass = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Process state as another execution sees it. */
const stateOf = (number: number) => inspect({ op: 'state', target: number });

describe('PAUSE PROCESS', () => {
  it('a running execution stops at its next ctx.checkpoint and goes on when resumed', async () => {
    // `busy` passes a ctx.checkpoint every 5 ms and ends after 1.5 s of work unless held.
    const n = await active('busy', { ms: 1500 });
    expect(await inspect({ op: 'pause', target: n })).toBe('done');
    expect(await stateOf(n)).toBe(PROCESS_STATE.paused);
    expect(await client.processState(n)).toBe(5);
    await pass(2500);
    expect((await client.get(n)).state).toBe('active');
    expect(await client.processInfo(n)).toMatchObject({ number: n, state: 'active', code: 5 });

    expect(await inspect({ op: 'resume', target: n })).toBe('done');
    await waitForState(client, n, 'completed');
  });

  it('a pause whose message the node missed holds the execution once its subscriber reconnects', async () => {
    const redis = testClient();
    const n = await active('busy', { ms: 1500 });
    // The pause lands while the subscriber is away: the mark is written, its message lost.
    await redis.hset(executionJobKey(testKeys(prefix), n), PAUSE_FIELD, 'run');
    const list = (await redis.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(`name=sprocd:${prefix}:${node.name}:subscriber`));
    const clientId = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(clientId).toBeDefined();
    await redis.client('KILL', 'ID', clientId as string);
    await pass(2500);
    expect((await client.get(n)).state).toBe('active');
    await client.resume(n);
    await waitForState(client, n, 'completed');
  });

  it('holds a ctx.delay past its time (DELAY PROCESS does not move it); RESUME ends it at once', async () => {
    const n = await active('sleeper', { ms: 1500 });
    await client.pause(n);
    expect(await client.processState(n)).toBe(5);
    // A paused ctx.delay does not end on time, nor when woken: the pause holds it.
    await client.wake(n);
    await pass(2500);
    expect((await client.get(n)).state).toBe('active');
    expect(await stateOf(n)).toBe(PROCESS_STATE.paused);

    await client.resume(n);
    await waitForState(client, n, 'completed');
    expect(await client.processState(n)).toBe(-100);
  });

  it('a waiting execution does not start until resumed; the cluster reads it as 5', async () => {
    const p = uniquePrefix('proc-one');
    const one = await startInProcessNode(p, {
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'process-jobs'),
      SPROCD_CONCURRENCY: '1',
    });
    try {
      const c = one.client;
      const blocker = (await c.execute('busy', { ms: 600_000 })).number;
      await waitForState(c, blocker, 'active');
      const queued = (await c.execute('sleeper', { ms: 0 }, { name: 'held' })).number;
      expect(await c.processState(queued)).toBe(4);
      expect((await c.pause(queued)).number).toBe(queued);
      expect(await c.processState(queued)).toBe(5);
      // Pausing twice changes nothing (4D).
      await c.pause(queued);
      expect((await c.processes()).find((x) => x.number === queued)).toMatchObject({ code: 5, name: 'held' });
      expect(await c.processNumber('held')).toBe(queued);

      // The slot frees: a later execution runs, the paused one (first in line) does not.
      await c.abort(blocker);
      const later = (await c.execute('sleeper', { ms: 0 })).number;
      await waitForState(c, later, 'completed');
      expect(await c.get(queued)).toMatchObject({ attempt: 0 });
      expect(await c.processState(queued)).toBe(5);

      await c.resume(queued);
      await waitForState(c, queued, 'completed');
    } finally {
      await one.node.stop();
      await deletePrefix(testClient(), p);
    }
  });

  it('a waiting execution deep in a long wait list is held in place: the rest run in order around it', async () => {
    const p = uniquePrefix('proc-deep');
    const one = await startInProcessNode(p, {
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'process-jobs'),
      SPROCD_CONCURRENCY: '1',
    });
    try {
      const c = one.client;
      const blocker = (await c.execute('busy', { ms: 600_000 })).number;
      await waitForState(c, blocker, 'active');
      const numbers = (
        await c.executeBatch(Array.from({ length: 300 }, () => ({ procedure: 'sleeper', params: { ms: 0 } })))
      ).map((x) => x.number);
      const deep = numbers[150] as number;
      const later = numbers[200] as number;
      const dropped = numbers[250] as number;
      await c.pause(deep);
      await c.pause(later);
      await c.pause(dropped);
      // Paused at once, while still in the wait list (taking it out would walk the list).
      expect(await c.processState(deep)).toBe(5);
      expect(await c.get(deep)).toMatchObject({ state: 'waiting' });
      // Resumed before a worker reached it: it runs in its place.
      await c.resume(later);
      expect(await c.processState(later)).toBe(4);
      // Aborted while paused in the list: aborted at once, and the worker that reaches it drops it.
      await c.abort(dropped);
      expect(await c.get(dropped)).toMatchObject({ state: 'aborted' });

      await c.abort(blocker);
      // The last of each queue shard: shards are worked side by side, so the last number may end first.
      const shardsOf = testKeys(p).queues;
      for (const { shard } of shardsOf.all) {
        const last = numbers.filter((n) => shardsOf.ofNumber(n).shard === shard).at(-1) as number;
        await waitForState(c, last, 'completed', 30_000);
      }
      expect(await c.get(deep)).toMatchObject({ state: 'delayed', attempt: 0 });
      expect(await c.processState(deep)).toBe(5);
      // The order the workers finished them in, from the job-event stream of each queue shard: one
      // shard's wait list is FIFO, while shards are taken from side by side with no order between them.
      const keys = testKeys(p);
      const completed = async (shard: number) =>
        (await testClient().xrange(bullQueueKeys(keys.queues.all[shard] as ShardKeys).events, '-', '+'))
          .filter(([, f]) => f[1] === 'completed')
          .map(([, f]) => numberOfJobId(f[3]));
      const ofShard = (shard: number) => (n: number) => keys.queues.ofNumber(n).shard === shard;
      for (const { shard } of keys.queues.all) {
        expect(await completed(shard)).toEqual(
          numbers.filter((n) => n !== deep && n !== dropped).filter(ofShard(shard)),
        );
      }
      expect(await c.get(dropped)).toMatchObject({ state: 'aborted', attempt: 0 });

      await c.resume(deep);
      await waitForState(c, deep, 'completed');
      expect((await completed(keys.queues.ofNumber(deep).shard)).at(-1)).toBe(deep);
    } finally {
      await one.node.stop();
      await deletePrefix(testClient(), p);
    }
  });

  it('a delayed start that is paused keeps waiting; RESUME puts it back at its time', async () => {
    const later = (await client.execute('sleeper', { ms: 0 }, { delayMs: 600_000 })).number;
    expect(await client.processState(later)).toBe(1);
    await inspect({ op: 'pause', target: later });
    expect(await client.processState(later)).toBe(5);
    // DELAY PROCESS 0 would start it now: the pause holds it.
    await client.delay(later, 0);
    expect(await client.processState(later)).toBe(5);
    await inspect({ op: 'resume', target: later });
    expect(await client.get(later)).toMatchObject({ state: 'delayed', attempt: 0 });
    expect(await client.processState(later)).toBe(1);
    // Resumed to its time, not the far one it waited at while paused: waking it starts it now.
    await client.wake(later);
    await waitForState(client, later, 'completed');
  });

  it('abort ends a paused execution, running or not started', async () => {
    const running = await active('busy', { ms: 600_000 });
    await client.pause(running);
    await inspect({ op: 'abort', target: running });
    await waitForState(client, running, 'aborted');
    expect(await client.processState(running)).toBe(-1);

    const later = (await client.execute('sleeper', { ms: 0 }, { delayMs: 600_000 })).number;
    await client.pause(later);
    await client.abort(later);
    await waitForState(client, later, 'aborted');
  });

  it('does nothing to a missing or finished execution; over HTTP 404 and 409', async () => {
    const done = (await client.execute('sleeper', { ms: 0 })).number;
    await waitForState(client, done, 'completed');
    for (const op of ['pause', 'resume'] as const) {
      expect(await inspect({ op, target: done })).toBe('done');
      expect(await inspect({ op, target: 987_654_321 })).toBe('done');
      await expect(client[op](done)).rejects.toMatchObject({ status: 409, code: 'EXECUTION_FINISHED' });
      await expect(client[op](987_654_321)).rejects.toMatchObject({
        status: 404,
        code: 'EXECUTION_NOT_FOUND',
      });
    }
    expect(await client.processState(done)).toBe(-100);
    expect(await client.processState(987_654_321)).toBe(-100);
    await expect(client.processInfo(987_654_321)).rejects.toMatchObject({ status: 404 });
    expect(await client.processNumber('nobody-has-this')).toBe(0);
  });
});

describe('RESUME PROCESS', () => {
  it('of an execution that is not paused wakes it when delayed (4D) and changes nothing else', async () => {
    const napping = await active('sleeper', { ms: 600_000 });
    expect(await inspect({ op: 'resume', target: napping })).toBe('done');
    const woken = await waitForState(client, napping, 'completed');
    expect((woken.result as { slept: number }).slept).toBeLessThan(600_000);

    const working = await active('busy', { ms: 600_000 });
    await client.resume(working);
    expect(await client.processState(working)).toBe(0);
    await client.abort(working);
  });

  it('one resume after two pauses: a pause is a state, not a count', async () => {
    const n = await active('sleeper', { ms: 600_000 });
    await client.pause(n);
    await client.pause(n);
    await client.resume(n);
    await vi.waitFor(async () => expect((await client.get(n)).state).toBe('completed'), { timeout: 15_000 });
  });
});
