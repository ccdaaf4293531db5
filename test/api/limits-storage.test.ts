/**
 * GET /v1/session/entries pages a large storage on a real node and Redis: about `limit` entries a
 * page with a cursor to go on from, every entry across the pages with its size, the lock on a key
 * that has no entry yet on the first page, and a bad cursor refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('storage-pages');
const storage = createKeys(prefix).storage;
const ENTRIES = 3000;
let node: SprocdNode;
let client: SprocdClient;

interface Page {
  items: { key: string; size: number | null; lock?: unknown }[];
  nextCursor?: string;
}

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix));
  const redis = testClient();
  const fields: string[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    fields.push(`k${String(i).padStart(5, '0')}`, JSON.stringify({ n: i, pad: 'x'.repeat(i % 50) }));
  }
  await redis.hset(storage.data, ...fields);
  // A `use` creating an entry holds the lock of a key that has none yet.
  await redis.set(storage.lock('new-key'), '7:somenode.1', 'PX', 60_000);
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/session/entries', () => {
  it('pages the entries with a cursor: every entry once with its size, about limit a page', async () => {
    const seen = new Map<string, number | null>();
    const pages: Page[] = [];
    let cursor: string | undefined;
    do {
      const query = cursor ? `?limit=1000&cursor=${encodeURIComponent(cursor)}` : '?limit=1000';
      const page = await client.request<Page>('GET', `/v1/session/entries${query}`);
      pages.push(page);
      page.items.forEach((e) => seen.set(e.key, e.size));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    for (const page of pages) {
      expect(page.items.length).toBeLessThanOrEqual(1100);
      const keys = page.items.map((e) => e.key);
      expect(keys).toEqual([...keys].sort());
    }
    expect(seen.size).toBe(ENTRIES + 1);
    expect(seen.get('k00049')).toBe(JSON.stringify({ n: 49, pad: 'x'.repeat(49) }).length);
    expect(seen.get('new-key')).toBeNull();
    expect(pages[0]?.items.find((e) => e.key === 'new-key')?.lock).toBeDefined();

    const bad = await fetch(`${node.url}/v1/session/entries?cursor=nope`);
    expect(bad.status).toBe(400);
  });
});
