/**
 * An aborted (or timed-out) execution keeps its worker slot until its code settles (issue 9): on a
 * node of concurrency 1, the next execution starts only after the first one's code has settled, while
 * the first already shows its end. A stop does not wait past its grace for code that never settles.
 */
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import type { SlotRecord } from '../fixtures/slot-gate.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('slot');
const nodes: SprocdNode[] = [];
const record = () => (globalThis as { slots?: SlotRecord }).slots;

beforeEach(() => {
  (globalThis as { slots?: SlotRecord }).slots = undefined;
});

afterAll(async () => {
  record()?.open?.();
  await Promise.all(nodes.map((n) => n.stop()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

async function singleSlotNode(name: string) {
  const started = await startInProcessNode(`${prefix}-${name}`, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'slot-jobs'),
    SPROCD_CONCURRENCY: '1',
  });
  nodes.push(started.node);
  return started;
}

describe('an interrupted execution keeps its slot until its code settles', () => {
  it('abort: shows aborted at once; the next execution starts only after its code settled', async () => {
    const { client } = await singleSlotNode('abort');
    const first = await client.execute('stubborn');
    await waitForState(client, first.number, 'active');
    const second = await client.execute('next');

    await client.abort(first.number);
    const aborted = await waitForState(client, first.number, 'aborted');
    expect(aborted.error?.code).toBe('ABORTED');
    // Aborted while its code still runs (held at the gate): the one slot is still its.
    expect(record()?.signalled.stubborn).toBeDefined();
    expect(record()?.settled.stubborn).toBeUndefined();
    expect((await client.get(second.number)).state).toBe('waiting');

    record()?.open?.();
    await waitForState(client, second.number, 'completed');
    const { settled, started } = record() as SlotRecord;
    expect(started.next).toBeGreaterThanOrEqual(settled.stubborn as number);
    // Its late result changed nothing.
    expect((await client.get(first.number)).state).toBe('aborted');
  });

  it('time-out: fails with EXECUTION_TIMEOUT at once; the next execution waits for its code', async () => {
    const { client } = await singleSlotNode('timeout');
    const first = await client.execute('slowpoke');
    const second = await client.execute('next');

    const failed = await waitForState(client, first.number, 'failed');
    expect(failed.error?.code).toBe('EXECUTION_TIMEOUT');
    expect(record()?.settled.slowpoke).toBeUndefined();
    expect((await client.get(second.number)).state).toBe('waiting');

    record()?.open?.();
    await waitForState(client, second.number, 'completed');
    const { settled, started } = record() as SlotRecord;
    expect(started.next).toBeGreaterThanOrEqual(settled.slowpoke as number);
  });

  it('a stop gives up the slot of code that never settles after its grace, and ends', async () => {
    const { node, client } = await singleSlotNode('stop');
    const first = await client.execute('stubborn');
    await waitForState(client, first.number, 'active');
    await client.abort(first.number);
    await waitForState(client, first.number, 'aborted');

    // The gate stays shut: the code never settles, and the stop ends anyway.
    await node.stop();
    expect(node.state).toBe('stopped');
    expect(record()?.settled.stubborn).toBeUndefined();
  });
});
