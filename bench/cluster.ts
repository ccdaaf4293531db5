/**
 * sprocd on Redis Cluster (issue 11): no-op executions/s (executeOnServer + process) and storage `use`
 * commits/s, with the Redis CPU each costs, on one plain redis-server and on a six-node Cluster (three
 * masters, three replicas: test/support/cluster.ts), with SPROCD_REPLICA_ACKS off and at 1, in the
 * same run, rounds alternating (a two-core machine is noisy), medians reported; and with three queue
 * shards (SPROCD_QUEUE_SHARDS=3) whose tags land on the three masters. With one shard a deployment's
 * keys share one slot, so one master carries all of its work; with three, the busiest master's CPU
 * per execution is what shows how the queue's load spreads.
 *
 * `BENCH_ONLY=cluster npm run bench`; standalone: `npx tsx bench/cluster.ts`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/redis/embedded.js';
import { createShardKeys } from '../src/redis/shards.js';
import { startRedisCluster } from '../test/support/cluster.js';
import { median, startBenchNode } from './bench-node.js';
import { drive, type Row } from './queue.js';

interface Side {
  rate: number;
  commits: number;
  /** Redis CPU per execution: the busiest node's (the deployment slot's master), and all nodes'. */
  masterUs: number;
  allUs: number;
}

async function cpuSeconds(url: string): Promise<number> {
  const probe = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = await probe.info('cpu');
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
    return field('used_cpu_user') + field('used_cpu_sys');
  } finally {
    probe.disconnect();
  }
}

/** One round: `total` no-op executions, then `total / 4` storage commits, on a fresh node. */
async function round(
  redisUrl: string,
  dataUrls: string[],
  acks: number,
  total: number,
  shards?: { count: number; prefix: () => Promise<string> },
): Promise<Side> {
  const { node, executions, worker, stop } = await startBenchNode(redisUrl, 'cluster', {
    SPROCD_RATE_LIMIT: '0',
    SPROCD_REPLICA_ACKS: String(acks),
    ...(shards ? { SPROCD_QUEUE_SHARDS: String(shards.count), SPROCD_PREFIX: await shards.prefix() } : {}),
  });
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  worker.on('completed', () => {
    if (++done === total) {
      allDone();
    }
  });
  const cpu0 = await Promise.all(dataUrls.map(cpuSeconds));
  const t0 = performance.now();
  await drive(total, () => executions.execute('noop', null));
  await finished;
  const rate = total / ((performance.now() - t0) / 1000);
  const spent = (await Promise.all(dataUrls.map(cpuSeconds))).map((s, i) => s - (cpu0[i] ?? 0));
  const masterUs = Math.max(...spent) * (1e6 / total);
  const allUs = spent.reduce((sum, s) => sum + s, 0) * (1e6 / total);

  const uses = Math.floor(total / 4);
  const c0 = performance.now();
  await drive(uses, (i) =>
    node.session.storage.use(`k${i % 16}`, (d) => {
      d.n = ((d.n as number | undefined) ?? 0) + 1;
    }),
  );
  const commits = uses / ((performance.now() - c0) / 1000);
  await stop();
  return { rate, commits, masterUs, allUs };
}

/** Runs the Cluster benchmark on its own Redis servers (the `url` bench/run.ts passes is not used). */
export async function benchCluster(total = 5000, rounds = 3): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-cluster-'));
  // The single Redis runs as the Cluster's nodes do: no persistence.
  const single = await startRedisServer({ dir, appendonly: false });
  const cluster = await startRedisCluster();
  try {
    const all = cluster.servers.map((s) => s.url);
    // Three queue shards on three masters: a fresh prefix whose shard tags hash apart.
    let rounds3 = 0;
    const spread = async () => {
      for (let i = 0; ; i++) {
        const candidate = `bench-shards-${Date.now()}-${rounds3++}-${i}`;
        const masters = await Promise.all(
          createShardKeys(candidate, 3).map(async (s) => (await cluster.masterOf(s.tag)).port),
        );
        if (new Set(masters).size === 3) {
          return candidate;
        }
      }
    };
    const sides = {
      single: { url: single.url, data: [single.url], acks: 0, shards: undefined },
      cluster: { url: cluster.url, data: all, acks: 0, shards: undefined },
      acked: { url: cluster.url, data: all, acks: 1, shards: undefined },
      sharded: { url: cluster.url, data: all, acks: 0, shards: { count: 3, prefix: spread } },
    };
    type Name = keyof typeof sides;
    const results: Record<Name, Side[]> = { single: [], cluster: [], acked: [], sharded: [] };
    for (const side of Object.values(sides)) {
      await round(side.url, side.data, side.acks, 1000, side.shards); // warm-up
    }
    for (let i = 0; i < rounds; i++) {
      // Each side first in turn, so that the machine's drift hits all alike.
      const order = (Object.keys(sides) as Name[]).map(
        (_, j, names) => names[(i + j) % names.length] as Name,
      );
      for (const name of order) {
        const side = sides[name];
        results[name].push(await round(side.url, side.data, side.acks, total, side.shards));
      }
    }
    const m = (name: Name, k: keyof Side) => median(results[name].map((r) => r[k]));
    return [
      { name: 'one Redis: no-op executions/s', value: m('single', 'rate'), unit: 'executions/s' },
      { name: 'Cluster, acks off: no-op executions/s', value: m('cluster', 'rate'), unit: 'executions/s' },
      {
        name: 'Cluster, SPROCD_REPLICA_ACKS=1: no-op executions/s',
        value: m('acked', 'rate'),
        unit: 'executions/s',
      },
      {
        name: 'Cluster / one Redis (executions/s, median of rounds)',
        value: median(results.cluster.map((r, i) => r.rate / (results.single[i]?.rate ?? NaN))),
        unit: 'x',
      },
      {
        name: 'Cluster, 3 queue shards on 3 masters, acks off: no-op executions/s',
        value: m('sharded', 'rate'),
        unit: 'executions/s',
      },
      { name: 'one Redis: Redis CPU per execution', value: m('single', 'masterUs'), unit: 'us' },
      {
        name: 'Cluster, acks off: slot master CPU per execution',
        value: m('cluster', 'masterUs'),
        unit: 'us',
      },
      { name: 'Cluster, acks off: all nodes CPU per execution', value: m('cluster', 'allUs'), unit: 'us' },
      {
        name: 'Cluster, 3 shards: busiest master CPU per execution',
        value: m('sharded', 'masterUs'),
        unit: 'us',
      },
      { name: 'Cluster, 3 shards: all nodes CPU per execution', value: m('sharded', 'allUs'), unit: 'us' },
      { name: 'Cluster, acks on: all nodes CPU per execution', value: m('acked', 'allUs'), unit: 'us' },
      { name: 'one Redis: storage use commits/s', value: m('single', 'commits'), unit: 'commits/s' },
      { name: 'Cluster, acks off: storage use commits/s', value: m('cluster', 'commits'), unit: 'commits/s' },
      { name: 'Cluster, acks on: storage use commits/s', value: m('acked', 'commits'), unit: 'commits/s' },
    ];
  } finally {
    await cluster.stop();
    await single.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.stdout.write(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}\n`,
  );
  for (const row of await benchCluster()) {
    const value = row.value >= 100 ? row.value.toFixed(0) : row.value.toFixed(2);
    process.stdout.write(`${row.name.padEnd(60)} ${value.padStart(10)} ${row.unit}\n`);
  }
}
