/**
 * Queue shard routing (redis/shards.ts), without Redis: which shard an execution number and a unique
 * name go to, the shard keys (S = 1 is today's layout key for key), and how a block of numbers hands
 * out the next number of one shard without losing the ones it passes over; and how work on many
 * executions goes one call per shard, its answers back in the order asked.
 */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { slotOf } from '../../src/redis/cluster.js';
import { createKeys, deploymentPattern } from '../../src/redis/keys.js';
import {
  MAX_QUEUE_SHARDS,
  QueueShards,
  ShardedBlock,
  createShardKeys,
  shardOfName,
  shardOfNumber,
  shardPattern,
  shardPlacement,
  shardTag,
} from '../../src/redis/shards.js';
import { Redis } from 'ioredis';

/** Redis's glob as a RegExp (only `*` is special in the patterns built here). */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^$()|[\]\\{}]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

/** Every key a shard's ShardKeys builds, for sample names. */
function shardKeyNames(s: ReturnType<typeof createShardKeys>[number]): string[] {
  const x = s.executionIndex;
  return [`${s.bullPrefix}:procedures:wait`, x.procedure('p'), x.name('n'), x.sweep, x.sweepAt, x.dropped];
}

describe('shard of a number', () => {
  it('is the number mod S', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => shardOfNumber(n, 3))).toEqual([1, 2, 0, 1, 2, 0]);
    expect(shardOfNumber(Number.MAX_SAFE_INTEGER, 64)).toBe(63);
  });

  it('is always 0 with one shard', () => {
    expect([1, 7, 123_456_789].map((n) => shardOfNumber(n, 1))).toEqual([0, 0, 0]);
  });
});

describe('shard of a unique name', () => {
  it('is CRC-32 of the UTF-8 bytes mod S, the same on every node and version', () => {
    // zlib's CRC-32: 'a' → 3904355907, 'order-1' → 3769860079, 'é' (2 bytes) → 235179326.
    expect(shardOfName('a', 3)).toBe(3904355907 % 3);
    expect(shardOfName('order-1', 5)).toBe(3769860079 % 5);
    expect(shardOfName('é', 7)).toBe(235179326 % 7);
    expect(shardOfName('anything', 1)).toBe(0);
  });

  it('spreads names over every shard', () => {
    const seen = new Set(Array.from({ length: 200 }, (_, i) => shardOfName(`order-${i}`, 4)));
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('shard keys', () => {
  it('keeps the layout of one queue under {prefix} for S = 1', () => {
    const keys = createKeys('acme');
    const [only, ...rest] = createShardKeys('acme', 1);
    expect(rest).toEqual([]);
    expect(only!.tag).toBe('{acme}');
    expect(only!.bullPrefix).toBe(keys.bullPrefix);
    expect(shardKeyNames(only!)).toEqual([
      '{acme}:procedures:wait',
      keys.executionIndex.procedure('p'),
      keys.executionIndex.name('n'),
      keys.executionIndex.sweep,
      keys.executionIndex.sweepAt,
      keys.executionIndex.dropped,
    ]);
  });

  it('puts each shard under its own tag {prefix:q<i>} for S > 1, shard 0 included', () => {
    const shards = createShardKeys('acme', 3);
    expect(shards.map((s) => s.tag)).toEqual(['{acme:q0}', '{acme:q1}', '{acme:q2}']);
    const all = shards.flatMap(shardKeyNames);
    expect(new Set(all).size).toBe(all.length);
    for (const s of shards) {
      for (const key of shardKeyNames(s)) {
        expect(key.startsWith(s.tag)).toBe(true);
        expect(slotOf(key)).toBe(slotOf(s.tag));
      }
    }
  });

  it('has a cleanup pattern that matches the shards of its deployment only', () => {
    const mine = createShardKeys('acme', MAX_QUEUE_SHARDS).flatMap(shardKeyNames);
    for (const key of mine) {
      expect(key).toMatch(glob(shardPattern('acme')));
      expect(key).not.toMatch(glob(deploymentPattern('acme')));
    }
    // Another deployment's keys, its shards included: a prefix holds no ':', so no tag is a shard tag.
    for (const key of [...createShardKeys('acme2', 2).flatMap(shardKeyNames), '{acme}:seq', '{acme.q}:seq']) {
      expect(key).not.toMatch(glob(shardPattern('acme')));
    }
  });

  it('names the tag of a shard from its count', () => {
    expect(shardTag('p', 0, 1)).toBe('{p}');
    expect(shardTag('p', 0, 2)).toBe('{p:q0}');
    expect(shardTag('p', 63, 64)).toBe('{p:q63}');
  });
});

describe('ShardedBlock', () => {
  it('hands out a block in order', () => {
    const block = new ShardedBlock(3, 10, 14);
    expect([block.take(), block.take(), block.take(), block.take(), block.take()]).toEqual([
      10,
      11,
      12,
      13,
      undefined,
    ]);
  });

  it('takes the next number of a residue and keeps the ones it passed over', () => {
    const block = new ShardedBlock(3, 10, 20); // 10 .. 19
    expect(block.takeFor(0)).toBe(12); // 10 and 11 kept
    expect(block.size).toBe(9);
    expect(block.takeFor(1)).toBe(10); // a kept one first
    expect(block.takeFor(1)).toBe(13);
    expect(block.take()).toBe(11); // the lowest left: the kept 11
    expect(block.take()).toBe(14);
    const rest: number[] = [];
    for (let n = block.take(); n !== undefined; n = block.take()) {
      rest.push(n);
    }
    expect(rest).toEqual([15, 16, 17, 18, 19]);
    expect(block.size).toBe(0);
  });

  it('answers undefined when the block has no number of that residue, keeping the others', () => {
    const block = new ShardedBlock(4, 1, 3); // 1, 2
    expect(block.takeFor(3)).toBeUndefined();
    expect(block.size).toBe(2);
    expect(block.takeFor(2)).toBe(2);
    expect(block.take()).toBe(1);
  });

  it('keeps the numbers passed over across a refill, and loses none of either block', () => {
    const block = new ShardedBlock(2, 1, 3); // 1, 2
    expect(block.takeFor(0)).toBe(2); // 1 kept
    block.refill(7, 9); // 7, 8, 9
    const out: number[] = [];
    for (let n = block.take(); n !== undefined; n = block.take()) {
      out.push(n);
    }
    expect(out).toEqual([1, 7, 8, 9]);
  });

  it('drops everything on clear', () => {
    const block = new ShardedBlock(2, 1, 10);
    block.takeFor(1);
    block.takeFor(0);
    block.clear();
    expect(block.size).toBe(0);
    expect(block.take()).toBeUndefined();
    expect(block.takeFor(1)).toBeUndefined();
  });

  it('routes every number it hands for a shard to that shard', () => {
    const block = new ShardedBlock(5, 1, 1000);
    for (let i = 0; i < 150; i++) {
      const shard = i % 5 === 0 ? 3 : i % 2;
      const n = block.takeFor(shard);
      expect(n !== undefined && shardOfNumber(n, 5)).toBe(shard);
    }
  });
});

describe('shardPlacement', () => {
  it('names each shard slot, and no master on a single Redis', () => {
    const single = new Redis({ lazyConnect: true });
    const placement = shardPlacement(single, createShardKeys('acme', 2));
    expect(placement).toEqual([
      { shard: 0, tag: '{acme:q0}', slot: slotOf('{acme:q0}'), master: undefined },
      { shard: 1, tag: '{acme:q1}', slot: slotOf('{acme:q1}'), master: undefined },
    ]);
    single.disconnect();
  });
});

describe('QueueShards', () => {
  it('finds the shard of a number and of a name', () => {
    const shards = new QueueShards('acme', 3);
    expect(shards.all.map((s) => s.shard)).toEqual([0, 1, 2]);
    expect(shards.ofNumber(7).tag).toBe('{acme:q1}');
    expect(shards.ofName('order-1')).toBe(shards.all[shardOfName('order-1', 3)]);
  });

  it('has the one shard {prefix} for S = 1, and refuses counts out of 1..64', () => {
    const one = new QueueShards('acme', 1);
    expect(one.ofNumber(12345).bullPrefix).toBe(createKeys('acme').bullPrefix);
    expect(one.ofName('x').tag).toBe('{acme}');
    expect(() => new QueueShards('acme', 0)).toThrow(RangeError);
    expect(() => new QueueShards('acme', 65)).toThrow(RangeError);
    expect(() => new QueueShards('acme', 1.5)).toThrow(RangeError);
    // The setting's range is the same (src/config.ts writes 64 out, to stay light).
    expect(loadSettings({ SPROCD_QUEUE_SHARDS: String(MAX_QUEUE_SHARDS) }, '/srv').queueShards).toBe(
      MAX_QUEUE_SHARDS,
    );
  });

  it('maps items one call per shard, all at once, and answers in the order of the items', async () => {
    const shards = new QueueShards('acme', 3);
    const calls: { shard: number; group: number[] }[] = [];
    let running = 0;
    let most = 0;
    const answers = await shards.mapByShard(
      [7, 3, 4, 9, 1, 5],
      (n) => n,
      async (group, shard) => {
        calls.push({ shard: shard.shard, group });
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 10 - shard.shard));
        running--;
        return group.map((n) => `${n}@${shard.tag}`);
      },
    );
    // Shards in the order of their first item; each shard's items in the order given.
    expect(calls).toEqual([
      { shard: 1, group: [7, 4, 1] },
      { shard: 0, group: [3, 9] },
      { shard: 2, group: [5] },
    ]);
    expect(most).toBe(3);
    expect(answers).toEqual([
      '7@{acme:q1}',
      '3@{acme:q0}',
      '4@{acme:q1}',
      '9@{acme:q0}',
      '1@{acme:q1}',
      '5@{acme:q2}',
    ]);
    // The number may come from beside the item, by its index.
    const numbers = [2, 0];
    expect(
      await shards.mapByShard(
        ['x', 'y'],
        (_, i) => numbers[i]!,
        async (g, s) => g.map(() => s.shard),
      ),
    ).toEqual([2, 0]);
  });

  it('maps every item in one call with one shard, and makes no call without items', async () => {
    const one = new QueueShards('acme', 1);
    const groups: number[][] = [];
    const answers = await one.mapByShard(
      [5, 8, 13],
      (n) => n,
      async (group) => {
        groups.push(group);
        return group.map((n) => n * 2);
      },
    );
    expect(groups).toEqual([[5, 8, 13]]);
    expect(answers).toEqual([10, 16, 26]);
    expect(
      await one.mapByShard(
        [],
        (n: number) => n,
        async (group) => {
          groups.push(group);
          return group;
        },
      ),
    ).toEqual([]);
    expect(groups).toHaveLength(1);
  });
});
