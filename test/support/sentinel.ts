/**
 * A real Redis Sentinel group from Debian's redis-server binary (`redis-server sentinel.conf
 * --sentinel`; redis-sentinel itself need not be on PATH): one master, two replicas and three
 * sentinels on free ports of 127.0.0.1, with a short down-after-milliseconds so that a fail-over takes
 * a few seconds. Started and stopped by the Sentinel tests and by bench/sentinel.ts, which is why it
 * imports nothing from vitest (its waits are plain loops with a deadline).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServer } from '../../src/redis/embedded.js';

/** A running sentinel. */
export interface SentinelProcess {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A master, its replicas and the sentinels that watch them. */
export interface SentinelGroup {
  /** The master group name. */
  readonly name: string;
  /** `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/<name>`: what REDIS_URL gets. */
  readonly url: string;
  /** The data nodes, the first one the master at the start. */
  readonly servers: readonly RedisServer[];
  readonly sentinels: readonly SentinelProcess[];
  /** The data node the sentinels name as master now. */
  master(): Promise<RedisServer>;
  /** The data nodes other than the current master (replicas, or dead). */
  replicas(): Promise<RedisServer[]>;
  /** Resolves with the new master once the sentinels name another than `old` (within `timeoutMs`). */
  failedOver(old: RedisServer, timeoutMs?: number): Promise<RedisServer>;
  /** Resolves once the master sees `count` replicas online (within `timeoutMs`). */
  replicasOnline(count: number, timeoutMs?: number): Promise<void>;
  /** Stops every process of the group and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@link startSentinelGroup}. */
export interface SentinelGroupOptions {
  /** The master group name. @defaultValue "mymaster" */
  name?: string;
  /** Sentinel's down-after-milliseconds. @defaultValue 1000 */
  downAfterMs?: number;
  /** Sentinel's failover-timeout. @defaultValue 3000 */
  failoverTimeoutMs?: number;
  /** Replicas. @defaultValue 2 */
  replicas?: number;
}

/** Starts a master, its replicas and three sentinels, and resolves once the sentinels see them all. */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const name = options.name ?? 'mymaster';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-sentinel-'));
  const servers: RedisServer[] = [];
  const sentinels: SentinelProcess[] = [];
  const stop = async () => {
    await Promise.all(sentinels.map((s) => s.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // No AOF: a fail-over test is about what the replicas have, and fsync would only slow it down.
    const master = await startRedisServer({ dir: path.join(dir, 'node-0'), appendonly: false });
    servers.push(master);
    for (let i = 1; i <= (options.replicas ?? 2); i++) {
      servers.push(
        await startRedisServer({
          dir: path.join(dir, `node-${i}`),
          appendonly: false,
          args: ['--replicaof', '127.0.0.1', String(master.port)],
        }),
      );
    }
    for (let i = 0; i < 3; i++) {
      sentinels.push(
        await startSentinel(path.join(dir, `sentinel-${i}`), name, master.port, {
          downAfterMs: options.downAfterMs ?? 1000,
          failoverTimeoutMs: options.failoverTimeoutMs ?? 3000,
        }),
      );
    }
    const ask = async <T>(work: (client: Redis) => Promise<T>): Promise<T> => {
      let last: unknown;
      for (const s of sentinels) {
        const client = new Redis({
          port: s.port,
          host: '127.0.0.1',
          lazyConnect: true,
          maxRetriesPerRequest: 0,
        });
        client.on('error', () => undefined);
        try {
          await client.connect();
          return await work(client);
        } catch (err) {
          last = err;
        } finally {
          client.disconnect();
        }
      }
      throw last;
    };
    const masterPort = async () =>
      Number(
        (
          await ask((c) => c.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string]>)
        )[1],
      );
    const byPort = (port: number) => {
      const server = servers.find((s) => s.port === port);
      if (!server) {
        throw new Error(`the sentinels name port ${port}, which is none of the group's servers`);
      }
      return server;
    };
    const group: SentinelGroup = {
      name,
      url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
      servers,
      sentinels,
      master: async () => byPort(await masterPort()),
      replicas: async () => {
        const port = await masterPort();
        return servers.filter((s) => s.port !== port);
      },
      failedOver: async (old, timeoutMs = 30_000) => {
        await until(async () => (await masterPort()) !== old.port, timeoutMs, 'the sentinels to fail over');
        const next = byPort(await masterPort());
        // The sentinels name it before it has left replica mode; writes need it to be master.
        await until(
          async () => (await roleOf(next)) === 'master',
          timeoutMs,
          `port ${next.port} to become master`,
        );
        return next;
      },
      replicasOnline: async (count, timeoutMs = 30_000) => {
        await until(
          async () => {
            const port = await masterPort();
            const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true });
            client.on('error', () => undefined);
            try {
              await client.connect();
              const info = await client.info('replication');
              return (info.match(/state=online/g) ?? []).length >= count;
            } finally {
              client.disconnect();
            }
          },
          timeoutMs,
          `${count} replicas online`,
        );
      },
      stop,
    };
    // Every sentinel must know the replicas and the other sentinels before a fail-over can happen.
    await until(
      async () => {
        for (const s of sentinels) {
          const client = new Redis({ port: s.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
          client.on('error', () => undefined);
          try {
            const replicas = (await client.call('SENTINEL', 'replicas', name)) as unknown[];
            const others = (await client.call('SENTINEL', 'sentinels', name)) as unknown[];
            if (replicas.length < servers.length - 1 || others.length < sentinels.length - 1) {
              return false;
            }
          } finally {
            client.disconnect();
          }
        }
        return true;
      },
      30_000,
      'the sentinels to discover the replicas and each other',
    );
    await group.replicasOnline(servers.length - 1);
    return group;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Freezes a process (SIGSTOP) for `ms`, then lets it go on (SIGCONT). */
export async function freeze(pid: number, ms: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

async function roleOf(server: RedisServer): Promise<string> {
  const client = new Redis(server.url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const role = (await client.call('ROLE')) as [string];
    return role[0];
  } catch {
    return 'down';
  } finally {
    client.disconnect();
  }
}

async function startSentinel(
  dir: string,
  name: string,
  masterPort: number,
  o: { downAfterMs: number; failoverTimeoutMs: number },
): Promise<SentinelProcess> {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  // Sentinel rewrites its configuration file as it learns the group, so each has its own.
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'logfile ""',
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${name} ${o.downAfterMs}`,
      `sentinel failover-timeout ${name} ${o.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [conf, '--sentinel'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('+monitor master')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => reject(new Error(`sentinel exited (${code}): ${output.slice(-500)}`)));
  });
  return {
    port,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Waits until `check` answers true, at most `timeoutMs` (errors count as "not yet"). */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(100);
  }
}
