/**
 * ctx.processes (issue 9): 4D's Process number, Process state, Process info, Process activity,
 * DELAY PROCESS and ABORT PROCESS BY ID on other executions, by number, on a real node and Redis.
 * As in 4D, a missing or finished execution makes them do nothing.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { PROCESS_STATE, stateCode } from '../../src/procedures/processes.js';
import type { ExecutionView, JsonValue, ProcessDetails } from '../../src/types.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
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
