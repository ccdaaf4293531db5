/**
 * Params through a real node: a procedure whose schema fills in defaults runs with no params and its
 * execution shows the params it ran with; GET /v1/procedures publishes what a caller may send; stored
 * params that no longer fit fail at once, without retries.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { jobIdOf } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { ROOT, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('params');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  // The repository's own jobs/: hello.ts declares `who` with a default.
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_JOBS_DIR: path.join(ROOT, 'jobs') }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('params with defaults', () => {
  it('runs with no params and stores what the schema produced', async () => {
    const done = await client.execute('hello', undefined, { wait: 10_000 });
    expect(done).toMatchObject({
      state: 'completed',
      params: { who: 'world' },
      result: { greeting: 'Hello, world!' },
    });
    expect((await client.get(done.number)).params).toEqual({ who: 'world' });
  });

  it('publishes the input schema: a field with a default is optional', async () => {
    const hello = (await client.procedures()).find((p) => p.name === 'hello');
    const schema = hello?.params as { properties: Record<string, unknown>; required?: string[] };
    expect(schema.properties.who).toMatchObject({ type: 'string', default: 'world' });
    expect(schema.required ?? []).not.toContain('who');
  });
});

describe('params that no longer fit', () => {
  it('fail at once with PARAMS_MISMATCH, whatever attempts are left', async () => {
    // As a deploy that tightened the schema would leave it: an execution queued with params the
    // procedure's schema refuses now (who must not be empty), and attempts to spare.
    const number = 900_000 + Math.floor(Math.random() * 90_000);
    // Added straight to BullMQ, so into the queue shard the number lives in.
    await node
      .internals()
      .executions.queueOf(number)
      .add(
        'hello',
        { procedure: 'hello', params: { who: '' }, id: randomUUID(), name: '' },
        { jobId: jobIdOf(number), attempts: 3, backoff: { type: 'fixed', delay: 10 } },
      );
    const failed = await waitForState(client, number, 'failed');
    expect(failed.error).toMatchObject({ code: 'PARAMS_MISMATCH' });
    expect(failed.error?.message).toMatch(/no longer match procedure "hello".*who: /);
    expect(failed.attempt).toBe(1);
  });
});
