/**
 * The HTTP server's own limits on a real node, with raw sockets: a client that sends its headers a
 * byte at a time (slow-loris), or a body too slowly, or nothing at all, is closed by the time-outs;
 * an idle kept-alive connection is closed; past SPROCD_MAX_CONNECTIONS new connections are closed at
 * once, and served again when one goes.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('server-limits');
let node: SprocdNode;
let port: number;

beforeAll(async () => {
  ({ node } = await startInProcessNode(prefix, {
    SPROCD_HEADERS_TIMEOUT_MS: '500',
    SPROCD_REQUEST_TIMEOUT_MS: '1000',
    SPROCD_KEEP_ALIVE_TIMEOUT_MS: '300',
  }));
  port = Number(new URL(node.url).port);
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** A raw connection: what it received, and when it was closed (ms after it opened). */
function connect(
  to = port,
): Promise<{ socket: net.Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let text = '';
    const socket = net.connect(to, '127.0.0.1');
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - started)));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

/** Writes `parts` one every `everyMs` while the socket is open. */
async function trickle(socket: net.Socket, parts: string[], everyMs: number): Promise<void> {
  for (const part of parts) {
    if (socket.destroyed) {
      return;
    }
    socket.write(part);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** GET /healthz on a connection of its own; the status, or the error's code. */
function health(to: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: to, path: '/healthz', agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('time-outs', () => {
  it('closes a slow-loris client whose headers do not arrive within SPROCD_HEADERS_TIMEOUT_MS', async () => {
    const conn = await connect();
    const lines = ['GET /healthz HTTP/1.1\r\n', 'Host: 127.0.0.1\r\n', ...Array(40).fill('X-Slow: 1\r\n')];
    void trickle(conn.socket, lines, 100);
    const closedAfter = await conn.closed;
    expect(closedAfter).toBeLessThan(2500);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a connection that sends nothing', async () => {
    const conn = await connect();
    expect(await conn.closed).toBeLessThan(2500);
  });

  it('closes a client whose body does not arrive within SPROCD_REQUEST_TIMEOUT_MS', async () => {
    const conn = await connect();
    conn.socket.write(
      'POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n',
    );
    void trickle(conn.socket, Array(40).fill(' '), 100);
    expect(await conn.closed).toBeLessThan(3000);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a kept-alive connection idle for SPROCD_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const conn = await connect();
    conn.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await expect.poll(() => conn.received()).toMatch(/^HTTP\/1\.1 200/);
    expect(await conn.closed).toBeLessThan(3000);
  });
});

describe('SPROCD_MAX_CONNECTIONS=3', () => {
  it('closes new connections past the cap at once, and serves again once one went', async () => {
    const other = await startInProcessNode(prefix, { SPROCD_MAX_CONNECTIONS: '3' });
    const to = Number(new URL(other.url).port);
    try {
      // Three connections that have not sent their request yet (within the headers time-out).
      const held = await Promise.all([connect(to), connect(to), connect(to)]);
      expect(await health(to)).toMatch(/ECONNRESET|socket hang up/);
      held[0]?.socket.destroy();
      await expect.poll(() => health(to)).toBe(200);
      held.forEach((conn) => conn.socket.destroy());
    } finally {
      await other.node.stop();
    }
  });
});
