/**
 * A real Redis Cluster from Debian's redis-server and redis-cli: six nodes on free ports of 127.0.0.1
 * (`--cluster-enabled yes`, no AOF), joined by `redis-cli --cluster create --cluster-replicas 1` into
 * three masters with one replica each, with a short cluster-node-timeout so that a fail-over takes a
 * few seconds. Started and stopped by the Cluster tests and by bench/cluster.ts, which is why it
 * imports nothing from vitest (its waits are plain loops with a deadline), as ./sentinel.ts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServer } from '../../src/redis/embedded.js';

const run = promisify(execFile);

/** One line of CLUSTER NODES, read. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | undefined;
  /** fail, pfail, handshake...: the flags past myself/master/slave. */
  failing: boolean;
  /** The slot ranges it serves, inclusive. */
  slots: [number, number][];
}

/** The nodes of a running Redis Cluster. */
export interface RedisClusterGroup {
  /** `redis+cluster://127.0.0.1:p1,...` of every node: what REDIS_URL gets. */
  readonly url: string;
  readonly servers: readonly RedisServer[];
  /** The slot of `key` (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /** The node serving `key`'s slot as master now, as the live nodes agree. */
  masterOf(key: string): Promise<RedisServer>;
  /** The live replicas of `master`. */
  replicasOf(master: RedisServer): Promise<RedisServer[]>;
  /** Starts a seventh (eighth...) node and makes it one more replica of `master`, online. */
  addReplica(master: RedisServer): Promise<RedisServer>;
  /** Resolves with the new master of `key` once another node than `old` serves it and the Cluster is ok. */
  failedOver(key: string, old: RedisServer, timeoutMs?: number): Promise<RedisServer>;
  /** CLUSTER NODES as a live node sees it. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** Stops every node and removes the folder. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** cluster-node-timeout: how long a master is unreachable before its replica takes over. @defaultValue 1000 */
  nodeTimeoutMs?: number;
}

/** Starts six nodes, makes them a Cluster of three masters and three replicas, and waits until it is ok. */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterGroup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-cluster-'));
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const startNode = async (): Promise<RedisServer> => {
      const server = await startRedisServer({
        dir: path.join(dir, `node-${servers.length}`),
        appendonly: false,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          // The bus port is port + 10000 unless told: past 55535 that is no port at all.
          '--cluster-port',
          String(await freePort()),
          '--cluster-node-timeout',
          String(options.nodeTimeoutMs ?? 1000),
          // A replica takes over however long ago it last heard from its master.
          '--cluster-replica-validity-factor',
          '0',
        ],
      });
      servers.push(server);
      return server;
    };
    for (let i = 0; i < 6; i++) {
      await startNode();
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...servers.map((s) => `127.0.0.1:${s.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 60_000 },
    );
    const group = clusterGroup(servers, stop, startNode);
    await until(
      async () => {
        for (const s of servers) {
          const info = await ask(s, (c) => c.call('CLUSTER', 'INFO') as Promise<string>);
          if (!info.includes('cluster_state:ok')) {
            return false;
          }
        }
        // A WAIT counts only replicas done with their first sync.
        const masters = (await group.nodes()).filter((n) => n.role === 'master');
        for (const m of masters) {
          const info = await ask(byPort(servers, m.port), (c) => c.info('replication'));
          if (!/slave0:.*state=online/.test(info)) {
            return false;
          }
        }
        return masters.length === 3;
      },
      60_000,
      'every node to report cluster_state:ok and every master a replica online',
    );
    return group;
  } catch (err) {
    await stop();
    throw err;
  }
}

function byPort(servers: readonly RedisServer[], port: number): RedisServer {
  const server = servers.find((s) => s.port === port);
  if (!server) {
    throw new Error(`the Cluster names port ${port}, which is none of its servers`);
  }
  return server;
}

function clusterGroup(
  servers: RedisServer[],
  stop: () => Promise<void>,
  startNode: () => Promise<RedisServer>,
): RedisClusterGroup {
  const anyLive = async <T>(work: (c: Redis) => Promise<T>): Promise<T> => {
    let last: unknown;
    for (const s of servers) {
      try {
        return await ask(s, work);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
  const group: RedisClusterGroup = {
    url: `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    servers,
    slotOf: (key) => anyLive((c) => c.call('CLUSTER', 'KEYSLOT', key) as Promise<number>),
    nodes: async () => parseNodes(await anyLive((c) => c.call('CLUSTER', 'NODES') as Promise<string>)),
    masterOf: async (key) => {
      const slot = await group.slotOf(key);
      const owner = (await group.nodes()).find(
        (n) => n.role === 'master' && !n.failing && n.slots.some(([a, b]) => a <= slot && slot <= b),
      );
      if (!owner) {
        throw new Error(`no live master serves slot ${slot}`);
      }
      return byPort(servers, owner.port);
    },
    replicasOf: async (master) => {
      const nodes = await group.nodes();
      const id = nodes.find((n) => n.port === master.port)?.id;
      return nodes.filter((n) => n.masterId === id && !n.failing).map((n) => byPort(servers, n.port));
    },
    addReplica: async (master) => {
      const id = (await group.nodes()).find((n) => n.port === master.port)?.id;
      const replica = await startNode();
      await run(
        'redis-cli',
        [
          '--cluster',
          'add-node',
          `127.0.0.1:${replica.port}`,
          `127.0.0.1:${master.port}`,
          '--cluster-slave',
          '--cluster-master-id',
          String(id),
        ],
        { timeout: 60_000 },
      );
      await until(
        async () => {
          const info = await ask(master, (c) => c.info('replication'));
          return info.includes(`port=${replica.port},state=online`);
        },
        60_000,
        `port ${replica.port} online as a replica of port ${master.port}`,
      );
      return replica;
    },
    failedOver: async (key, old, timeoutMs = 30_000) => {
      let next: RedisServer | undefined;
      await until(
        async () => {
          next = await group.masterOf(key);
          if (next === old) {
            return false;
          }
          const info = await ask(next, (c) => c.call('CLUSTER', 'INFO') as Promise<string>);
          return info.includes('cluster_state:ok');
        },
        timeoutMs,
        `another master than port ${old.port} for ${key}`,
      );
      return next as RedisServer;
    },
    stop,
  };
  return group;
}

/** CLUSTER NODES' text, read: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
export function parseNodes(text: string): ClusterNodeInfo[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-', , , , , ...slots] = line.trim().split(' ');
      const flagList = flags.split(',');
      return {
        id,
        port: Number(/:(\d+)@/.exec(address)?.[1] ?? 0),
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        failing: flagList.some((f) => f === 'fail' || f === 'fail?' || f === 'noaddr'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [a, b] = s.split('-').map(Number) as [number, number | undefined];
            return [a, b ?? a] as [number, number];
          }),
      };
    });
}

/** Runs `work` on a short-lived plain connection to one node (the node answers, whatever its role). */
async function ask<T>(server: RedisServer, work: (c: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(server.url, { maxRetriesPerRequest: 0, lazyConnect: true, connectTimeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await work(client);
  } finally {
    client.disconnect();
  }
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
