/**
 * Redis trouble under real node processes, with a redis-server of this file's own that the tests
 * stop, freeze and start: requests fail fast with 503, readiness follows Redis, the node never dies,
 * system events arrive, and work resumes by itself.
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, startRedisServer, type RedisServer } from '../../src/redis/embedded.js';
import type { SystemEvent } from '../../src/lifecycle/system-events.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { uniquePrefix } from '../support/redis.js';

let redis: RedisServer;
let tmp: string;
const nodes: ChildNode[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-faults-'));
  redis = await startRedisServer({ dir: path.join(tmp, 'redis'), appendfsync: 'always' });
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function eventsFile(): string {
  return path.join(tmp, `events-${Math.random().toString(36).slice(2)}.jsonl`);
}

function readEvents(file: string): SystemEvent[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SystemEvent);
  } catch {
    return [];
  }
}

async function start(env: Record<string, string>, waitReady = true): Promise<ChildNode> {
  const node = await spawnNode(
    env.SPROCD_PREFIX ?? uniquePrefix('flt'),
    {
      REDIS_URL: redis.url,
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-events'),
      SPROCD_REDIS_TIMEOUT_MS: '1000',
      ...env,
    },
    { waitReady },
  );
  nodes.push(node);
  return node;
}

/** Waits until `file` holds an event of each of `types`, and returns every event in it. */
function waitForEvents(file: string, ...types: string[]): Promise<SystemEvent[]> {
  return vi.waitFor(
    () => {
      const events = readEvents(file);
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(types));
      return events;
    },
    { timeout: 15_000, interval: 25 },
  );
}

const status = async (url: string) => (await fetch(url)).status;

describe('Redis stopped and started under a running node', () => {
  it('reports lost and back, answers 503 fast meanwhile, and resumes work by itself', async () => {
    const file = eventsFile();
    const node = await start({ TEST_EVENTS_FILE: file });
    expect((await node.client.execute('echo', 'before', { wait: 5000 })).state).toBe('completed');

    await redis.stop();
    await waitForEvents(file, 'redis.lost');
    await expect.poll(() => status(`${node.url}/readyz`), { timeout: 15_000 }).toBe(503);
    const t0 = Date.now();
    await expect(node.client.execute('echo', 'during')).rejects.toMatchObject({
      status: 503,
      code: 'REDIS_UNAVAILABLE',
    });
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(await status(`${node.url}/healthz`)).toBe(200);

    await redis.restart();
    await waitForEvents(file, 'redis.back');
    await expect.poll(() => status(`${node.url}/readyz`), { timeout: 15_000 }).toBe(200);
    const after = await node.client.execute('echo', 'after', { wait: 10_000 });
    expect(after).toMatchObject({ state: 'completed', result: 'after' });
    expect(node.proc.exitCode).toBeNull();
    const lost = readEvents(file).find((e) => e.type === 'redis.lost');
    expect(lost).toMatchObject({ node: expect.any(String), at: expect.any(String) });
  });

  it('keeps acknowledged executions across a Redis crash (AOF always)', async () => {
    const node = await start({ SPROCD_CONCURRENCY: '1' });
    const blocker = await node.client.execute('sleep', { ms: 1500 });
    const queued = await Promise.all(Array.from({ length: 20 }, (_, i) => node.client.execute('echo', i)));
    await redis.kill();
    await redis.restart();
    for (const q of queued) {
      const done = await waitForState(node.client, q.number, 'completed');
      expect(done.result).toBe(q.params);
    }
    expect(await node.client.get(blocker.number)).toBeDefined();
  });
});

describe('a node stopped while Redis is down', () => {
  it('still stops, and exits 0, within its grace period and a few Redis time-outs', async () => {
    const node = await start({
      SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-record'),
      SPROCD_SHUTDOWN_GRACE_MS: '500',
    });
    const running = await node.client.execute('stubborn', { ms: 60_000 });
    await waitForState(node.client, running.number, 'active');
    await redis.stop();
    const t0 = Date.now();
    node.proc.kill('SIGTERM');
    const code = await Promise.race([
      node.exited,
      new Promise((r) => setTimeout(() => r('timeout'), 20_000)),
    ]);
    if (code === 'timeout') {
      console.log(
        node.lines
          .filter((l) => typeof l.time === 'number' && (l.time as number) >= t0)
          .map((l) => `${(l.time as number) - t0} ${String(l.msg)}`)
          .join('\n'),
      );
    }
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await redis.restart();
  });
});

describe('a frozen Redis', () => {
  it('fails requests within SPROCD_REDIS_TIMEOUT_MS and recovers when it thaws', async () => {
    const node = await start({});
    expect((await node.client.execute('echo', 1, { wait: 5000 })).state).toBe('completed');
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      await expect(node.client.execute('echo', 2)).rejects.toMatchObject({
        status: 503,
        code: 'REDIS_UNAVAILABLE',
      });
      await expect(node.client.list()).rejects.toMatchObject({ status: 503 });
      expect(Date.now() - t0).toBeLessThan(3500);
      expect(await status(`${node.url}/readyz`)).toBe(503);
      expect(await status(`${node.url}/healthz`)).toBe(200);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await expect.poll(() => status(`${node.url}/readyz`), { timeout: 15_000 }).toBe(200);
    expect((await node.client.execute('echo', 3, { wait: 10_000 })).state).toBe('completed');
  });
});

describe('Redis absent when the node starts', () => {
  it('answers /healthz, waits for Redis, then starts and works', async () => {
    const port = await freePort();
    const late = await startRedisServer({ dir: path.join(tmp, 'late'), port });
    await late.stop();
    const node = await start({ REDIS_URL: `redis://127.0.0.1:${port}`, PORT: '0' }, false);
    const listening = await node.waitForLine((l) => l.msg === 'api listening');
    const url = String(listening.url);
    expect(await status(`${url}/healthz`)).toBe(200);
    expect(await status(`${url}/readyz`)).toBe(503);
    await node.waitForLine((l) => l.msg === 'waiting for Redis');
    await late.restart();
    try {
      await node.waitForLine((l) => l.msg === 'sprocd node ready', 20_000);
      expect(await status(`${url}/readyz`)).toBe(200);
    } finally {
      await node.kill();
      await late.stop();
    }
  });
});

describe('a node killed', () => {
  it('the others hear node.joined, node.left and execution.recovered', async () => {
    const prefix = uniquePrefix('flt');
    const file = eventsFile();
    const aFile = eventsFile();
    const a = await start({ SPROCD_PREFIX: prefix, TEST_EVENTS_FILE: aFile });
    // Long enough that node b's start (seconds on a loaded machine) never outlasts it; the second
    // attempt is woken once it runs on b.
    const view = await a.client.execute('sleep', { ms: 120_000 });
    await waitForState(a.client, view.number, 'active');
    const b = await start({ SPROCD_PREFIX: prefix, TEST_EVENTS_FILE: file });
    await expect.poll(() => b.client.nodes(), { timeout: 15_000 }).toHaveLength(2);
    const joined = await waitForEvents(aFile, 'node.joined');
    const bName = String(b.lines.find((l) => l.msg === 'sprocd node ready')?.node);
    expect(joined.find((e) => e.type === 'node.joined')).toMatchObject({ joined: bName });
    await a.kill('SIGKILL');
    const events = await waitForEvents(file, 'node.left', 'execution.recovered');
    expect(events.find((e) => e.type === 'execution.recovered')).toMatchObject({ execution: view.number });
    await expect
      .poll(() => b.client.get(view.number), { timeout: 30_000, interval: 100 })
      .toMatchObject({ state: 'active', attempt: 2 });
    await b.client.wake(view.number);
    const done = await waitForState(b.client, view.number, 'completed');
    expect(done.result).toMatchObject({ attempt: 2 });
  });
});

describe('REDIS_URL with a password and with TLS', () => {
  it('connects with a password, and never logs it', async () => {
    const secured = await startRedisServer({
      dir: path.join(tmp, 'pw'),
      args: ['--requirepass', 's3cret-pa55'],
    });
    try {
      const node = await start({ REDIS_URL: `redis://:s3cret-pa55@127.0.0.1:${secured.port}` });
      expect((await node.client.execute('echo', 'pw', { wait: 5000 })).result).toBe('pw');
      expect(JSON.stringify(node.lines)).not.toMatch(/s3cret-pa55/);
      await node.kill();
    } finally {
      await secured.stop();
    }
  });

  it('connects over rediss:// to a TLS-only Redis', async () => {
    const dir = path.join(tmp, 'tls');
    fs.mkdirSync(dir, { recursive: true });
    const ssl = (args: string) => execSync(`openssl ${args}`, { cwd: dir, stdio: 'pipe' });
    ssl('req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca');
    ssl('req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost');
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ssl(
      'x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile ext.cnf',
    );
    const tlsPort = await freePort();
    const tls = await startRedisServer({
      dir,
      args: [
        '--port',
        '0',
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        path.join(dir, 'server.pem'),
        '--tls-key-file',
        path.join(dir, 'server.key'),
        '--tls-ca-cert-file',
        path.join(dir, 'ca.pem'),
        '--tls-auth-clients',
        'no',
      ],
    });
    try {
      const node = await start({
        REDIS_URL: `rediss://127.0.0.1:${tlsPort}`,
        NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'),
      });
      expect((await node.client.execute('echo', 'tls', { wait: 5000 })).result).toBe('tls');
      await node.kill();
    } finally {
      await tls.stop();
    }
  });
});
