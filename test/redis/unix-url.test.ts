/**
 * `REDIS_URL=unix:///path/to/redis.sock`: the URL form, and a node that runs through the socket.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { redactUrl } from '../../src/logger.js';
import type { SprocdNode } from '../../src/node.js';
import { startRedisServer, type RedisServer } from '../../src/redis/embedded.js';
import { formatUnixUrl, isUnixUrl, parseUnixUrl } from '../../src/redis/unix-url.js';
import { ROOT, startInProcessNode } from '../support/node.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-unix-'));
const servers: RedisServer[] = [];
const nodes: SprocdNode[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a unix:// REDIS_URL', () => {
  it('names the socket, a db, a user and a password', () => {
    expect(isUnixUrl('unix:///run/redis.sock')).toBe(true);
    expect(isUnixUrl('redis://localhost')).toBe(false);
    expect(parseUnixUrl('unix:///run/redis.sock')).toEqual({ path: '/run/redis.sock' });
    expect(parseUnixUrl('unix:///run/my%20redis.sock?db=2&username=app&password=s%26cret')).toEqual({
      path: '/run/my redis.sock',
      db: 2,
      username: 'app',
      password: 's&cret',
    });
    const url = formatUnixUrl({ path: '/run/my redis.sock', db: 2, password: 's&cret' });
    expect(parseUnixUrl(url)).toEqual({ path: '/run/my redis.sock', db: 2, password: 's&cret' });
  });

  it('refuses a relative path, a bad db and an unknown option, naming the variable', () => {
    expect(() => parseUnixUrl('unix://run/redis.sock')).toThrow(/absolute socket path/);
    expect(() => parseUnixUrl('unix:///run/redis.sock?db=x')).toThrow(/db must be a whole number/);
    expect(() => parseUnixUrl('unix:///run/redis.sock?tls=1')).toThrow(/not "tls"/);
    expect(() => loadSettings({ REDIS_URL: 'unix://relative.sock' }, ROOT)).toThrow(
      /REDIS_URL="unix:\/\/relative.sock": a unix:\/\/ URL names an absolute socket path/,
    );
  });

  it('keeps its password out of the logs', () => {
    expect(redactUrl('unix:///run/redis.sock?db=1&password=secret')).toBe(
      'unix:///run/redis.sock?db=1&password=***',
    );
  });

  it('falls back to TCP alone where the socket cannot be made', async () => {
    // A folder in the socket's place: redis-server cannot bind it, as on a file system without sockets.
    fs.mkdirSync(path.join(dir, 'nosock', 'redis.sock'), { recursive: true });
    const server = await startRedisServer({
      dir: path.join(dir, 'nosock'),
      appendonly: false,
      unixSocket: true,
    });
    servers.push(server);
    expect(server.socketUrl).toBeUndefined();
    expect(server.url).toMatch(/^redis:\/\/127\.0\.0\.1:/);
  });

  it('runs a node through the socket, password and all', async () => {
    const server = await startRedisServer({
      dir: path.join(dir, 'r'),
      appendonly: false,
      password: true,
      unixSocket: true,
    });
    servers.push(server);
    expect(server.socketUrl).toMatch(/^unix:\/\/\//);
    const { node, client } = await startInProcessNode('unix-url', { REDIS_URL: server.socketUrl ?? '' });
    nodes.push(node);
    expect((await client.execute('echo', 'over the socket', { wait: 10_000 })).result).toBe(
      'over the socket',
    );
    await client.writeStorage('unix', { n: 1 });
    expect(await client.storage('unix')).toEqual({ n: 1 });
  });
});
