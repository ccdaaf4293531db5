/**
 * Per-file Redis isolation: a fresh key prefix for each test file (or test), connections that are
 * counted so a test that leaks one fails, and cleanup of only our own keys.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, inject } from 'vitest';
import { Redis } from 'ioredis';
import { deleteDeploymentKeys } from '../../src/redis/cleanup.js';

/** The Redis URL of this test run (set by the global setup). */
export function testRedisUrl(): string {
  return inject('redisUrl');
}

/** A prefix nobody else uses, for one test file or one test. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

const open = new Set<Redis>();

/** A plain client for assertions; closed by {@link closeTestClients}. */
export function testClient(): Redis {
  const client = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  open.add(client);
  client.once('end', () => open.delete(client));
  return client;
}

/** Closes the clients opened by {@link testClient}. */
export async function closeTestClients(): Promise<void> {
  await Promise.all([...open].map((c) => c.quit().catch(() => c.disconnect())));
  open.clear();
}

/** Deletes every key under `{prefix}` (and only those). */
export const deletePrefix = deleteDeploymentKeys;

/** Number of connections to the test Redis whose CLIENT SETNAME starts with `namePrefix`. */
export async function countConnections(client: Redis, namePrefix: string): Promise<number> {
  const list = (await client.client('LIST')) as string;
  return list.split('\n').filter((line) => new RegExp(`\\bname=${escapeRe(namePrefix)}`).test(line)).length;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * What a test file opens, released after its tests: `prefix(label)` gives a fresh prefix whose keys are
 * deleted, `onClose(fn)` registers a close (run last-opened first, errors ignored); then the test clients
 * are closed.
 */
export function releasedAfterAll(): {
  prefix(label: string): string;
  onClose(close: () => Promise<unknown>): void;
} {
  const prefixes: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) {
      await close().catch(() => undefined);
    }
    for (const prefix of prefixes) {
      await deletePrefix(testClient(), prefix);
    }
    await closeTestClients();
  });
  return {
    prefix(label) {
      const prefix = uniquePrefix(label);
      prefixes.push(prefix);
      return prefix;
    },
    onClose(close) {
      closers.push(close);
    },
  };
}
