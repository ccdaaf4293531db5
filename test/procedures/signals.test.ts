/**
 * New signal (ctx.newSignal, ctx.openSignal, wait, trigger) on in-process nodes against the real test
 * Redis: the 4D meanings, the Redis hash and its expiry, the errors, and the re-read after the
 * subscriber reconnects.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { signalTrigger } from '../../src/redis/scripts.js';
import { SIGNAL_TRIGGERED_TTL_MS, Signals } from '../../src/procedures/signals.js';
import type { Signal } from '../../src/types.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sig');
const keys = createKeys(prefix);
const NODE = `sig-${randomUUID().slice(0, 6)}`;
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '8', SPROCD_NODE_NAME: NODE }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** Starts a waiting execution of the signal fixture and answers its number and its signal's id. */
async function waiter(params: Record<string, unknown> = {}): Promise<{ number: number; id: string }> {
  const { number } = await client.execute('signal', { op: 'wait', ...params });
  const view = await vi.waitFor(
    async () => {
      const v = await client.get(number);
      expect((v.progress as { signal?: string } | undefined)?.signal).toBeTypeOf('string');
      return v;
    },
    { timeout: 10_000, interval: 20 },
  );
  return { number, id: (view.progress as { signal: string }).signal };
}

describe('New signal', () => {
  it('wakes a waiting execution when another execution triggers it, with the result', async () => {
    const { number, id } = await waiter({ description: 'handshake' });
    const trigger = await client.execute(
      'signal',
      { op: 'trigger', id, result: { ok: [1, 2] } },
      { wait: 10_000 },
    );
    expect(trigger.result).toMatchObject({ first: true, signaled: true, result: { ok: [1, 2] } });
    const done = await waitForState(client, number, 'completed');
    expect(done.result).toMatchObject({
      id,
      signaled: true,
      known: true,
      result: { ok: [1, 2] },
      description: 'handshake',
    });
  });

  it('wait answers false at its time-out and true at once when triggered; the first trigger wins', async () => {
    const done = await client.execute('signal', { op: 'cycle' }, { wait: 10_000 });
    expect(done.result).toEqual({
      before: { signaled: false, result: 'none' },
      timedOut: false,
      first: true,
      second: false,
      again: true,
      result: { n: 1 },
      reopened: { signaled: true, result: { n: 1 } },
      reopenedWait: true,
    });
  });

  it('a later trigger from another execution changes nothing', async () => {
    const { number, id } = await waiter();
    const first = await client.execute('signal', { op: 'trigger', id, result: 'a' }, { wait: 10_000 });
    const second = await client.execute('signal', { op: 'trigger', id, result: 'b' }, { wait: 10_000 });
    expect(first.result).toMatchObject({ first: true, result: 'a' });
    expect(second.result).toMatchObject({ first: false, signaled: true, result: 'a' });
    expect((await waitForState(client, number, 'completed')).result).toMatchObject({ result: 'a' });
  });

  it('a wait with a time-out answers false when nobody triggers it', async () => {
    const done = await client.execute('signal', { op: 'wait', timeoutMs: 30 }, { wait: 10_000 });
    expect(done.result).toMatchObject({ signaled: false, known: false, result: null, description: '' });
  });

  it('is opened by id in another execution, which can wait on it too', async () => {
    const { number, id } = await waiter();
    const other = await client.execute('signal', { op: 'waitOpen', id });
    await waitForState(client, other.number, 'active');
    const open = await client.execute('signal', { op: 'open', id }, { wait: 10_000 });
    expect(open.result).toEqual({ description: '', signaled: false, result: null });
    await client.execute('signal', { op: 'trigger', id, result: 7 }, { wait: 10_000 });
    expect((await waitForState(client, other.number, 'completed')).result).toMatchObject({
      signaled: true,
      result: 7,
    });
    expect((await waitForState(client, number, 'completed')).result).toMatchObject({
      signaled: true,
      result: 7,
    });
  });

  it('an unknown, malformed or expired id is SIGNAL_NOT_FOUND', async () => {
    const unknown = await client.execute('signal', { op: 'open', id: randomUUID() }, { wait: 10_000 });
    expect(unknown.result).toEqual({ code: 'SIGNAL_NOT_FOUND', name: 'SignalNotFoundError' });
    const malformed = await client.execute('signal', { op: 'open', id: '../x y' }, { wait: 10_000 });
    expect(malformed.result).toEqual({ code: 'SIGNAL_NOT_FOUND', name: 'SignalNotFoundError' });

    const { number, id } = await waiter();
    await testClient().del(keys.signal(id)); // as if it expired
    const expired = await client.execute('signal', { op: 'open', id }, { wait: 10_000 });
    expect(expired.result).toEqual({ code: 'SIGNAL_NOT_FOUND', name: 'SignalNotFoundError' });
    const trigger = await client.execute('signal', { op: 'trigger', id }, { wait: 10_000 });
    expect(trigger).toMatchObject({ state: 'failed', error: { code: 'SIGNAL_NOT_FOUND' } });
    await client.abort(number);
  });

  it('refuses a result that is not JSON and bad arguments', async () => {
    const done = await client.execute('signal', { op: 'badResult' }, { wait: 10_000 });
    expect(done.result).toEqual({
      trigger: { code: 'VALIDATION_FAILED', name: 'ValidationError' },
      signaled: false,
      wait: { name: 'TypeError' },
      description: { name: 'TypeError' },
    });
  });

  it('lives in a Redis hash: a day while unused, ten minutes once triggered', async () => {
    const redis = testClient();
    const { number, id } = await waiter({ description: 'kept' });
    expect(await redis.hgetall(keys.signal(id))).toMatchObject({ d: 'kept', s: '0' });
    expect(await redis.pttl(keys.signal(id))).toBeGreaterThan(SIGNAL_TRIGGERED_TTL_MS);
    await client.execute('signal', { op: 'trigger', id, result: { r: 1 } }, { wait: 10_000 });
    await waitForState(client, number, 'completed');
    expect(await redis.hgetall(keys.signal(id))).toMatchObject({ s: '1', r: '{"r":1}' });
    const ttl = await redis.pttl(keys.signal(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(SIGNAL_TRIGGERED_TTL_MS);
  });

  it('an aborted waiter stops waiting', async () => {
    const { number } = await waiter();
    await client.abort(number);
    expect((await waitForState(client, number, 'aborted')).error?.code).toBe('ABORTED');
  });

  it('a trigger whose message the node missed still wakes the waiter once its subscriber reconnects', async () => {
    const redis = testClient();
    const { number, id } = await waiter();
    // The trigger lands while the subscriber is away: written, its message lost.
    await redis.hset(keys.signal(id), 's', '1', 'r', '"missed"');
    const list = (await redis.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(`name=sprocd:${prefix}:${NODE}:subscriber`));
    const clientId = /\bid=(\d+)/.exec(line ?? '')?.[1];
    expect(clientId).toBeDefined();
    await redis.client('KILL', 'ID', clientId as string);
    expect((await waitForState(client, number, 'completed')).result).toMatchObject({
      signaled: true,
      result: 'missed',
    });
  });
});

describe('New signal: the node side (Signals)', () => {
  it('recheck() reads every waited signal, so a wait wakes without its message', async () => {
    const redis = testClient();
    const signals = new Signals(redis, keys);
    const abort = new AbortController();
    const owner = { abort: abort.signal, note: () => undefined };
    const signal: Signal = await signals.create('no subscriber', owner);
    const waiting = signal.wait();
    await vi.waitFor(() => expect(signals.waiting).toBe(1));
    // Triggered with no subscriber listening: the message reaches nobody.
    expect((await signalTrigger(redis, keys, signal.id, '"quiet"', 60_000)).outcome).toBe('first');
    await signals.recheck();
    expect(await waiting).toBe(true);
    expect(signal.result).toBe('quiet');
    expect(signals.waiting).toBe(0);
  });

  it('a wait ends with the reason when its execution is aborted, and is forgotten', async () => {
    const signals = new Signals(testClient(), keys);
    const abort = new AbortController();
    const signal = await signals.create(undefined, { abort: abort.signal, note: () => undefined });
    const waiting = signal.wait();
    await vi.waitFor(() => expect(signals.waiting).toBe(1));
    abort.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(signals.waiting).toBe(0);
  });
});
