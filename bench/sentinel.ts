/**
 * sprocd on Redis Sentinel (issue 11): no-op executions/s (executeOnServer + process) and storage
 * `use` commits/s, with the Redis CPU each costs, on one Redis and on a Sentinel group (a master, two
 * replicas, three sentinels: test/support/sentinel.ts) with SPROCD_REPLICA_ACKS off and at 1, in the
 * same run, rounds alternating (a two-core machine is noisy), medians reported. With acks on it also
 * reports how many WAITs one execution cost: the group commit shares one WAIT among many writes.
 *
 * `BENCH_ONLY=sentinel npm run bench`; standalone: `npx tsx bench/sentinel.ts`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/redis/embedded.js';
import type { ReplicaAcks } from '../src/redis/replica-acks.js';
import { startSentinelGroup } from '../test/support/sentinel.js';
import { median, startBenchNode } from './bench-node.js';
import { drive, type Row } from './queue.js';

interface Side {
  rate: number;
  /** Redis CPU per execution: the master's, and the master's with its replicas'. */
  masterUs: number;
  allUs: number;
  commits: number;
  waitsPerExecution: number;
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
  dataUrls: { master: string; all: string[] },
  acks: number,
  total: number,
): Promise<Side> {
  const { node, executions, worker, stop } = await startBenchNode(redisUrl, 'sentinel', {
    SPROCD_RATE_LIMIT: '0',
    SPROCD_REPLICA_ACKS: String(acks),
  });
  const replicaAcks = (node as unknown as { acks: ReplicaAcks }).acks;
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  worker.on('completed', () => {
    if (++done === total) {
      allDone();
    }
  });
  const master0 = await cpuSeconds(dataUrls.master);
  const all0 = await Promise.all(dataUrls.all.map(cpuSeconds));
  const waits0 = replicaAcks.waits;
  const t0 = performance.now();
  await drive(total, () => executions.execute('noop', null));
  await finished;
  const rate = total / ((performance.now() - t0) / 1000);
  const waitsPerExecution = (replicaAcks.waits - waits0) / total;
  const masterUs = ((await cpuSeconds(dataUrls.master)) - master0) * (1e6 / total);
  const all1 = await Promise.all(dataUrls.all.map(cpuSeconds));
  const allUs = all1.reduce((sum, s, i) => sum + s - (all0[i] ?? 0), 0) * (1e6 / total);

  const uses = Math.floor(total / 4);
  const c0 = performance.now();
  await drive(uses, (i) =>
    node.session.storage.use(`k${i % 16}`, (d) => {
      d.n = ((d.n as number | undefined) ?? 0) + 1;
    }),
  );
  const commits = uses / ((performance.now() - c0) / 1000);

  await stop();
  return { rate, masterUs, allUs, commits, waitsPerExecution };
}

/** Runs the Sentinel benchmark on its own Redis servers (the `url` bench/run.ts passes is not used). */
export async function benchSentinel(total = 5000, rounds = 3): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-sentinel-'));
  // The single Redis runs as the group's data nodes do: no persistence.
  const single = await startRedisServer({ dir, appendonly: false });
  const group = await startSentinelGroup();
  try {
    const master = (await group.master()).url;
    const sides = {
      single: { url: single.url, data: { master: single.url, all: [single.url] }, acks: 0 },
      sentinel: { url: group.url, data: { master, all: group.servers.map((s) => s.url) }, acks: 0 },
      acked: { url: group.url, data: { master, all: group.servers.map((s) => s.url) }, acks: 1 },
    };
    const results: Record<keyof typeof sides, Side[]> = { single: [], sentinel: [], acked: [] };
    for (const side of Object.values(sides)) {
      await round(side.url, side.data, side.acks, 1000); // warm-up
    }
    for (let i = 0; i < rounds; i++) {
      for (const [name, side] of Object.entries(sides) as [keyof typeof sides, (typeof sides)['single']][]) {
        results[name].push(await round(side.url, side.data, side.acks, total));
      }
    }
    const m = (name: keyof typeof sides, k: keyof Side) => median(results[name].map((r) => r[k]));
    return [
      { name: 'one Redis: no-op executions/s', value: m('single', 'rate'), unit: 'executions/s' },
      { name: 'Sentinel, acks off: no-op executions/s', value: m('sentinel', 'rate'), unit: 'executions/s' },
      {
        name: 'Sentinel, SPROCD_REPLICA_ACKS=1: no-op executions/s',
        value: m('acked', 'rate'),
        unit: 'executions/s',
      },
      {
        name: 'acks on / acks off (executions/s)',
        value: m('acked', 'rate') / m('sentinel', 'rate'),
        unit: 'x',
      },
      { name: 'Sentinel, acks on: WAITs per execution', value: m('acked', 'waitsPerExecution'), unit: '' },
      { name: 'one Redis: Redis CPU per execution', value: m('single', 'masterUs'), unit: 'us' },
      { name: 'Sentinel, acks off: master CPU per execution', value: m('sentinel', 'masterUs'), unit: 'us' },
      { name: 'Sentinel, acks on: master CPU per execution', value: m('acked', 'masterUs'), unit: 'us' },
      {
        name: 'Sentinel, acks off: all data nodes CPU per execution',
        value: m('sentinel', 'allUs'),
        unit: 'us',
      },
      { name: 'Sentinel, acks on: all data nodes CPU per execution', value: m('acked', 'allUs'), unit: 'us' },
      { name: 'one Redis: storage use commits/s', value: m('single', 'commits'), unit: 'commits/s' },
      {
        name: 'Sentinel, acks off: storage use commits/s',
        value: m('sentinel', 'commits'),
        unit: 'commits/s',
      },
      { name: 'Sentinel, acks on: storage use commits/s', value: m('acked', 'commits'), unit: 'commits/s' },
    ];
  } finally {
    await group.stop();
    await single.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.stdout.write(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}\n`,
  );
  for (const row of await benchSentinel()) {
    const value = row.value >= 100 ? row.value.toFixed(0) : row.value.toFixed(2);
    process.stdout.write(`${row.name.padEnd(60)} ${value.padStart(10)} ${row.unit}\n`);
  }
}
