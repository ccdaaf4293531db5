/**
 * The per-caller rate limit on two real nodes sharing one Redis: a burst past SPROCD_RATE_LIMIT is
 * answered 429 RATE_LIMITED with Retry-After, whichever node the requests reach (the count lives in
 * Redis), another caller keeps its own count, and the health routes are not counted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../src/auth/tokens.js';
import type { SprocdNode } from '../../src/node.js';
import { writeCallersFile } from '../support/callers.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('rate');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-rate-'));
const ci = newToken();
const ops = newToken();
const nodes: { node: SprocdNode; url: string }[] = [];

beforeAll(async () => {
  const file = writeCallersFile(dir, [
    { name: 'ci', token: ci, scopes: ['read'] },
    { name: 'ops', token: ops, scopes: ['read'] },
  ]);
  const env = { SPROCD_CALLERS_FILE: file, SPROCD_RATE_LIMIT: '6', SPROCD_RATE_LIMIT_WINDOW_MS: '60000' };
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

function get(node: number, token: string | undefined, route = '/v1/procedures'): Promise<Response> {
  return fetch(`${nodes[node]?.url}${route}`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

describe('SPROCD_RATE_LIMIT=6 per minute', () => {
  it('answers 429 with Retry-After once a caller sent 6 requests, counted across both nodes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await get(i % 2, ci);
      statuses.push(res.status);
      expect(res.headers.get('x-ratelimit-limit')).toBe('6');
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    for (const node of [0, 1]) {
      const res = await get(node, ci);
      expect(res.status).toBe(429);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await res.json()).toMatchObject({
        error: { code: 'RATE_LIMITED', details: { limit: 6, windowMs: 60_000 } },
      });
    }
    // Another caller has a count of its own; the health routes count for nobody.
    expect((await get(1, ops)).status).toBe(200);
    expect((await get(0, undefined, '/healthz')).status).toBe(200);
  });

  it('counts a burst sent at once exactly', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2, ops)));
    // ops sent one request in the test before: 5 more pass.
    expect(answers.filter((res) => res.status === 200)).toHaveLength(5);
    expect(answers.filter((res) => res.status === 429)).toHaveLength(15);
  });
});
