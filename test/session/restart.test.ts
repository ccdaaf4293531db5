/**
 * The session across a Redis restart (AOF on): its identity and entries are kept, and open sessions
 * go on by themselves once Redis is back (scripts reloaded, blocking reader reconnected).
 * Uses a private redis-server, since it is stopped and started here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../src/redis/embedded.js';
import { openTestSession, rejection, sleep, type TestSession } from './helpers.js';
import { uniquePrefix } from '../support/redis.js';

let server: RedisServer;
let dir: string;
const opened: TestSession[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-session-restart-'));
  server = await startRedisServer({ dir, appendfsync: 'always' });
});

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a Redis restart', () => {
  it('keeps the session and its storage, and open sessions go on after it', async () => {
    const prefix = uniquePrefix('rst');
    const first = await openTestSession(prefix, {
      redisUrl: server.url,
      lockLeaseMs: 500,
      commandTimeoutMs: 1000,
    });
    opened.push(first);
    const second = await openTestSession(prefix, {
      redisUrl: server.url,
      lockLeaseMs: 500,
      commandTimeoutMs: 1000,
    });
    opened.push(second);
    const id = first.session.id;
    await first.session.storage.use('kept', (d) => {
      d.v = 1;
    });

    await server.restart();

    // Commands fail fast while the connections come back; then everything works again.
    await expect
      .poll(() => first.session.storage.get('kept'), { timeout: 10_000, interval: 50 })
      .toBeDefined();
    expect(await first.session.storage.get('kept')).toEqual({ v: 1 });
    expect((await first.describe()).id).toBe(id);

    // Locks and hand-offs work after the restart: one node holds, the other waits and is woken.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const holder = first.session.storage.use('kept', async (d) => {
      entered();
      await held;
      d.v = 2;
    });
    await inside;
    const waiter = second.session.storage.use('kept', (d) => {
      d.v = (d.v as number) + 1;
    });
    await sleep(50);
    release();
    await Promise.all([holder, waiter]);
    expect(await second.session.storage.get('kept')).toEqual({ v: 3 });

    // A node started after the restart sees the same session.
    const third = await openTestSession(prefix, { redisUrl: server.url });
    opened.push(third);
    expect(third.session.id).toBe(id);
    expect(third.session.info.creationDateTime).toBe(first.session.info.creationDateTime);
  });

  it('a use while Redis is down fails with REDIS_UNAVAILABLE instead of hanging', async () => {
    const prefix = uniquePrefix('down');
    const node = await openTestSession(prefix, { redisUrl: server.url, commandTimeoutMs: 1000 });
    opened.push(node);
    await server.stop();
    try {
      const started = Date.now();
      const err = await rejection(node.session.storage.use('x', () => undefined));
      expect(err.code).toBe('REDIS_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await rejection(node.session.storage.get('x'))).code).toBe('REDIS_UNAVAILABLE');
    } finally {
      await server.restart();
    }
  });
});
