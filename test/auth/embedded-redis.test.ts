/**
 * A node's embedded Redis requires a password generated at each start (given on stdin, so the
 * process list never shows it), and its folder is the owner's only.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../src/redis/embedded.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-embedded-auth-'));
const servers: RedisServer[] = [];
const nodes: SprocdNode[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(servers.map((s) => s.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The server's first answer to `command` (inline protocol) on a fresh connection to `port`. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().trim());
    });
    socket.once('error', reject);
  });
}

/** What the server at `port` answers a PING from a client that gives no password. */
const pingWithoutPassword = (port: number) => ask(port, 'PING');

/** The same on the server's Unix socket. */
function pingOnSocketWithoutPassword(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath, () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().trim());
    });
    socket.once('error', reject);
  });
}

describe('the embedded Redis', () => {
  it('with password: true, refuses a client without the password and takes its url', async () => {
    const server = await startRedisServer({ dir: path.join(dir, 'a'), appendonly: false, password: true });
    servers.push(server);
    expect(await pingWithoutPassword(server.port)).toMatch(/^-NOAUTH/);
    const password = new URL(server.url).password;
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(await ask(server.port, 'AUTH guess')).toMatch(/^-WRONGPASS/);
    const ok = new Redis(server.url);
    expect(await ok.ping()).toBe('PONG');
    ok.disconnect();
    // Never on the command line another local user can read.
    const cmdline = fs.readFileSync(`/proc/${server.pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(password);
    expect(cmdline).not.toContain('requirepass');
    // A restart keeps the same password (the url stays good).
    await server.restart();
    const again = new Redis(server.url);
    expect(await again.ping()).toBe('PONG');
    again.disconnect();
  });

  it("makes its folder the owner's only, also a folder that was wider", async () => {
    const folder = path.join(dir, 'wide');
    fs.mkdirSync(folder, { mode: 0o755 });
    fs.chmodSync(folder, 0o755);
    const server = await startRedisServer({ dir: folder, appendonly: false, password: true });
    servers.push(server);
    expect(fs.statSync(folder).mode & 0o777).toBe(0o700);
    const fresh = path.join(dir, 'fresh', 'redis');
    const open = await startRedisServer({ dir: fresh, appendonly: false });
    servers.push(open);
    // Without `password`, a server for tests as before: no password asked.
    expect(await pingWithoutPassword(open.port)).toBe('+PONG');
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o700);
  });

  it('is what a node without REDIS_URL starts: protected, and the node works through it', async () => {
    const dataDir = path.join(dir, 'node-data');
    const { node, client } = await startInProcessNode('embedded-auth', {
      REDIS_URL: '',
      SPROCD_DATA_DIR: dataDir,
    });
    nodes.push(node);
    expect((await client.execute('echo', 'through the password', { wait: 10_000 })).result).toBe(
      'through the password',
    );
    const port = Number(fs.readFileSync(path.join(dataDir, 'redis', 'port'), 'utf8'));
    expect(await pingWithoutPassword(port)).toMatch(/^-NOAUTH/);
    expect(fs.statSync(path.join(dataDir, 'redis')).mode & 0o777).toBe(0o700);
    // The node talks to it over its Unix socket, which is the owner's only and wants the password too.
    const socket = path.join(dataDir, 'redis', 'redis.sock');
    expect(fs.statSync(socket).isSocket()).toBe(true);
    expect(fs.statSync(socket).mode & 0o777).toBe(0o700);
    expect((node as unknown as { redisUrl: string }).redisUrl).toMatch(
      /^unix:\/\/\/.*redis\.sock\?password=/,
    );
    expect(await pingOnSocketWithoutPassword(socket)).toMatch(/^-NOAUTH/);
  });
});
