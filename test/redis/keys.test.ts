/**
 * The key builder, without Redis: every key of a deployment carries its `{prefix}` hash tag (so
 * multi-key scripts run on Redis Cluster and deployments never meet), and job ids round-trip.
 */
import { describe, expect, it } from 'vitest';
import { createKeys, deploymentPattern, jobIdOf, numberOfJobId, slotPattern } from '../../src/redis/keys.js';

/**
 * Every key a Keys object can build: its strings, and what its builder functions return for sample
 * arguments (a number, then strings), walked recursively so that a key added later is covered too.
 */
function allKeys(value: unknown, where = 'keys'): [string, string][] {
  if (typeof value === 'string') {
    return [[where, value]];
  }
  if (typeof value === 'function') {
    const fn = value as (...args: unknown[]) => unknown;
    const args = Array.from({ length: fn.length }, (_, i) => (i === 0 ? 7 : `arg${i}`));
    return allKeys(fn(...args), `${where}()`);
  }
  if (typeof value === 'object' && value !== null) {
    // The queue shards repeat, with one shard, the deployment's own queue keys (`bullPrefix`,
    // `executionIndex`) on purpose; test/redis/shards.test.ts checks their layout.
    return Object.entries(value)
      .filter(([name]) => name !== 'queues')
      .flatMap(([name, v]) => allKeys(v, `${where}.${name}`));
  }
  return [];
}

/** Redis's glob as a RegExp (enough for the patterns built here: only `*` is special). */
function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^$()|[\]\\{}]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

describe('createKeys', () => {
  const keys = allKeys(createKeys('acme'));

  it('builds a non-trivial set of keys', () => {
    expect(keys.length).toBeGreaterThan(20);
  });

  it.each(keys)('%s is under the {acme} hash tag, or a storage slot of its own', (where, key) => {
    if (/\.slot[A-Z]\w*\(\)$/.test(where)) {
      expect(key.startsWith('{acme:s7}')).toBe(true);
      expect(globToRegExp(`${slotPattern('acme')}*`).test(key)).toBe(true);
      expect(globToRegExp(`${slotPattern('acme2')}*`).test(key)).toBe(false);
      return;
    }
    expect(key.startsWith('{acme}')).toBe(true);
    // One hash tag only: Redis Cluster hashes the first {...}, so a second one would be misleading.
    expect(key.slice('{acme}'.length)).not.toMatch(/[{}]/);
  });

  it('gives distinct keys to distinct things', () => {
    const byKey = new Map<string, string>();
    for (const [where, key] of keys) {
      expect(byKey.get(key), `${where} and ${byKey.get(key) ?? ''} share ${key}`).toBeUndefined();
      byKey.set(key, where);
    }
  });

  it('builds per-name keys that differ by name', () => {
    const { storage, backup } = createKeys('acme');
    expect(storage.lock('a')).not.toBe(storage.lock('b'));
    expect(storage.queue('a')).not.toBe(storage.lock('a'));
    expect(storage.alive('n1')).toBe(`${storage.alivePrefix}n1`);
    expect(storage.inbox('n1')).toBe(`${storage.inboxPrefix}n1`);
    expect(backup.tick('backup', 1000)).not.toBe(backup.tick('backup', 2000));
    expect(backup.snapshot(1, 'data')).not.toBe(backup.snapshot(2, 'data'));
  });

  it('keeps the storage keys under the storage prefix, so one SCAN finds them all', () => {
    const { storage } = createKeys('acme');
    for (const [where, key] of allKeys(storage, 'storage')) {
      if (/\.slot[A-Z]\w*\(\)$/.test(where)) {
        continue; // the data slots have hash tags of their own
      }
      expect(key.startsWith(storage.prefix), where).toBe(true);
    }
  });
});

describe('deploymentPattern', () => {
  it('matches every key of its deployment', () => {
    const pattern = globToRegExp(deploymentPattern('acme'));
    for (const [where, key] of allKeys(createKeys('acme'))) {
      if (/\.slot[A-Z]\w*\(\)$/.test(where)) {
        continue; // matched by slotPattern (above)
      }
      expect(key, where).toMatch(pattern);
    }
  });

  it('matches no key of a deployment whose prefix merely starts the same', () => {
    const pattern = globToRegExp(deploymentPattern('acme'));
    for (const [where, key] of allKeys(createKeys('acme2'))) {
      expect(key, where).not.toMatch(pattern);
    }
  });
});

describe('job ids', () => {
  it.each([1, 2, 42, 1_000_000, Number.MAX_SAFE_INTEGER])('round-trips execution %i', (n) => {
    expect(numberOfJobId(jobIdOf(n))).toBe(n);
  });

  it('is never a bare integer (BullMQ refuses those as custom ids)', () => {
    expect(jobIdOf(12)).not.toMatch(/^\d+$/);
  });

  it.each([undefined, '', 'e', 'e0', 'e01', '12', 'x12', 'e12x', 'e-1', 'e1.5', 'repeat:abc:123'])(
    'rejects the foreign id %s',
    (id) => {
      expect(numberOfJobId(id)).toBeUndefined();
    },
  );
});
