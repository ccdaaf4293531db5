/**
 * The per-caller rate limit counted locally and in batches (src/api/rate-counts.ts), on two real
 * nodes sharing one Redis with a limit large enough for batches (1000 per minute: a batch of 10):
 * what one node admits reaches the shared counter and the other node's count, and a burst spread
 * over both nodes is admitted up to the limit and at most 2 batches past it, the rest answered 429
 * RATE_LIMITED with Retry-After.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../src/auth/tokens.js';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { writeCallersFile } from '../support/callers.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const LIMIT = 1000;
/** 1 % of the limit (src/api/rate-counts.ts BATCH_SHARE). */
const BATCH = 10;
const prefix = uniquePrefix('rate-shared');
const keys = createKeys(prefix);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-rate-shared-'));
const sync = newToken();
const bulk = newToken();
const nodes: { node: SprocdNode; url: string }[] = [];

beforeAll(async () => {
  const file = writeCallersFile(dir, [
    { name: 'sync', token: sync, scopes: ['read'] },
    { name: 'bulk', token: bulk, scopes: ['read'] },
  ]);
  const env = {
    SPROCD_CALLERS_FILE: file,
    SPROCD_RATE_LIMIT: String(LIMIT),
    SPROCD_RATE_LIMIT_WINDOW_MS: '60000',
  };
  for (let i = 0; i < 2; i++) {
    nodes.push(await startInProcessNode(prefix, env));
  }
});

afterAll(async () => {
  await Promise.all(nodes.map(({ node }) => node.stop()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

function get(node: number, token: string): Promise<Response> {
  return fetch(`${nodes[node]?.url}/v1/procedures`, { headers: { authorization: `Bearer ${token}` } });
}

async function counter(caller: string): Promise<number> {
  return Number(await testClient().get(`${keys.rateLimitPrefix}caller:${caller}`));
}

describe(`SPROCD_RATE_LIMIT=${LIMIT} per minute on two nodes`, () => {
  it("adds one node's requests to the shared counter, which the other node counts on", async () => {
    for (let i = 0; i < 40; i++) {
      const res = await get(0, sync);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // Sent in batches, within a few flush intervals.
    await expect.poll(() => counter('sync'), { timeout: 2000, interval: 20 }).toBe(40);
    const other = await get(1, sync);
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-remaining')).toBe(String(LIMIT - 41));
    expect(await counter('sync')).toBe(41);
  });

  it(`admits a burst over both nodes up to the limit, and at most 2 × ${BATCH} past it`, async () => {
    const statuses: number[] = [];
    const refusals: Response[] = [];
    let sent = 0;
    await Promise.all(
      Array.from({ length: 32 }, async (_, client) => {
        while (sent < 2 * LIMIT) {
          sent++;
          const res = await get(client % 2, bulk);
          statuses.push(res.status);
          if (res.status === 429 && refusals.length < 5) {
            refusals.push(res);
          } else {
            await res.arrayBuffer();
          }
        }
      }),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(LIMIT + 2 * BATCH);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2 * LIMIT - admitted);
    expect(refusals).toHaveLength(5);
    for (const res of refusals) {
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await res.json()).toMatchObject({
        error: { code: 'RATE_LIMITED', details: { limit: LIMIT, windowMs: 60_000 } },
      });
    }
    // Every request admitted reached the shared counter.
    await expect
      .poll(() => counter('bulk'), { timeout: 2000, interval: 20 })
      .toBeGreaterThanOrEqual(admitted);
  });
});
