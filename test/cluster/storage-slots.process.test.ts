/**
 * The session storage in 8 data slots (SPROCD_STORAGE_SLOTS=8) on a real Redis Cluster (three
 * masters, three replicas; test/support/cluster.ts): two node processes with SPROCD_REPLICA_ACKS=1
 * count every storage increment, and a multi-key `use` over two entries whose slots are on different
 * masters commits whole or not at all.
 *
 * Its own vitest config (vitest.cluster.config.ts, run by .ci/cluster-test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import type { RedisClusterGroup } from '../support/cluster.js';
import type { ChildNode } from '../support/node.js';
import { uniquePrefix } from '../support/redis.js';
import { settled, startClusterNodes, stopClusterNodes } from './nodes.js';

/** Settled views of `numbers` (read every 300 ms, for up to a minute). */
const settled60 = (node: ChildNode, numbers: readonly number[]) => settled(node, numbers, 60_000);

const K = 8;
const prefix = uniquePrefix('cslots');
const layout = storageLayout(createKeys(prefix), K);
let cluster: RedisClusterGroup;
let a: ChildNode;
let b: ChildNode;

beforeAll(async () => {
  ({ cluster, a, b } = await startClusterNodes({
    prefix: () => prefix,
    env: { SPROCD_STORAGE_SLOTS: String(K) },
  }));
}, 90_000);

afterAll(() => stopClusterNodes({ cluster, a, b }));

/** The port of the master serving entry `name`'s data slot. */
async function masterPortOf(name: string): Promise<number> {
  return (await cluster.masterOf(layout.slots.slotFor(name).data)).port;
}

describe('storage in data slots on a Redis Cluster', () => {
  it('count every storage increment of executions on both nodes', async () => {
    const views = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).client.execute('tally', {})),
    );
    const done = await settled60(
      b,
      views.map((v) => v.number),
    );
    expect(done.filter((d) => d.state !== 'completed')).toEqual([]);
    const storage = (await a.client.storage()) as Record<string, Record<string, number>>;
    const counted = new Map<number, number>();
    for (const [key, entry] of Object.entries(storage)) {
      if (key.startsWith('tally-')) {
        for (const [n, count] of Object.entries(entry)) {
          counted.set(Number(n), count);
        }
      }
    }
    expect(views.filter((v) => counted.get(v.number) !== 1)).toEqual([]);
    // The tallies are spread over more than one master.
    const ports = await Promise.all(Object.keys(storage).map((key) => masterPortOf(key)));
    expect(new Set(ports).size).toBeGreaterThan(1);
  });

  it('commit a multi-key `use` over entries on different masters whole or not at all', async () => {
    // Two account names whose data slots are served by different masters.
    const from = 'acct-from';
    const fromPort = await masterPortOf(from);
    let to = '';
    for (let i = 0; to === ''; i++) {
      if ((await masterPortOf(`acct-to-${i}`)) !== fromPort) {
        to = `acct-to-${i}`;
      }
    }
    expect(await masterPortOf(to)).not.toBe(fromPort);
    const views = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? a : b).client.execute('transfer', { from, to, fail: i % 3 === 0 }),
      ),
    );
    const ended = await settled60(
      a,
      views.map((v) => v.number),
    );
    expect(ended.map((e) => e.state)).toEqual(views.map((_, i) => (i % 3 === 0 ? 'failed' : 'completed')));
    expect(await a.client.storage(from)).toEqual({ balance: -40 });
    expect(await b.client.storage(to)).toEqual({ balance: 40 });
  });
});
