/**
 * `npm run bench`: starts its own redis-server (no persistence, so disk speed does not blur the
 * comparison) and runs each benchmark, printing sprocd's figures beside the bare baselines.
 * BENCH_ONLY=queue,session,backup,console,auth,signals,checkpoint,workers,thread picks some;
 * BENCH_ONLY=sentinel (not in the default set: it starts a Sentinel group of its own and takes about a
 * minute more) runs bench/sentinel.ts, BENCH_ONLY=cluster (likewise: a six-node Redis Cluster of its
 * own) bench/cluster.ts, BENCH_ONLY=failover (a Sentinel group of its own, about 3 minutes) bench/failover.ts, and BENCH_ONLY=million the million-executions benchmark
 * (bench/million.ts, about two minutes on its own redis-server), which the default run leaves out.
 * BENCH_ONLY=graphile (not in the default set either: it needs PostgreSQL, GRAPHILE_DATABASE_URL)
 * runs sprocd against graphile-worker and bare BullMQ (bench/graphile.ts).
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { startRedisServer } from '../src/redis/embedded.js';
import { benchQueue, type Row } from './queue.js';

const only = new Set(
  (process.env.BENCH_ONLY ?? 'queue,session,backup,console,auth,signals,checkpoint,workers,thread').split(
    ',',
  ),
);

function print(title: string, rows: Row[]): void {
  process.stdout.write(`\n## ${title}\n`);
  for (const row of rows) {
    const value = row.value >= 100 ? row.value.toFixed(0) : row.value.toFixed(2);
    process.stdout.write(`${row.name.padEnd(60)} ${value.padStart(10)} ${row.unit}\n`);
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-'));
// A socket beside TCP: the benchmarks use TCP unless one asks for the socket (GRAPHILE_TRANSPORT).
const redis = process.env.REDIS_URL
  ? undefined
  : await startRedisServer({ dir, appendonly: false, unixSocket: true });
const url = process.env.REDIS_URL ?? redis!.url;
process.stdout.write(
  `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`,
);
try {
  if (only.has('queue')) {
    print('Execute on server vs bare BullMQ (one node, concurrency 16)', await benchQueue(url));
  }
  if (only.has('session') && fs.existsSync(new URL('./session.ts', import.meta.url))) {
    const { benchSession } = (await import(new URL('./session.ts', import.meta.url).href)) as {
      benchSession(url: string): Promise<{ rows: Row[] }>;
    };
    print('Session storage', (await benchSession(url)).rows);
  }
  if (only.has('backup') && fs.existsSync(new URL('./backup.ts', import.meta.url))) {
    const { benchBackup } = (await import(new URL('./backup.ts', import.meta.url).href)) as {
      benchBackup(url: string): Promise<Row[]>;
    };
    print('Backup and restore', await benchBackup(url));
  }
  if (only.has('console')) {
    const { benchConsole } = await import('./console.js');
    print('Live clients and the executions list (issue 7)', await benchConsole(url));
  }
  if (only.has('auth')) {
    const { benchAuth } = await import('./auth.js');
    print('Callers, rate limits and the audit trail (issue 8)', await benchAuth(url));
  }
  if (only.has('signals')) {
    const { benchSignals } = await import('./signals.js');
    print('Signal wake-up across two nodes (issue 9)', await benchSignals(url));
  }
  if (only.has('checkpoint')) {
    const { benchCheckpoint } = await import('./checkpoint.js');
    print('ctx.checkpoint() in a loop (issue 9)', await benchCheckpoint(url));
  }
  if (only.has('workers')) {
    const { benchWorkers } = await import('./workers.js');
    print(
      'Messages through one worker: CALL WORKER vs a bare BullMQ Worker (issue 9)',
      await benchWorkers(url),
    );
  }
  if (only.has('sentinel')) {
    const { benchSentinel } = await import('./sentinel.js');
    print('One Redis vs Sentinel, replica acknowledgements off and on (issue 11)', await benchSentinel());
  }
  if (only.has('failover')) {
    const { benchFailover } = await import('./failover.js');
    print('How long a Sentinel fail-over stalls sprocd and bare BullMQ (issue 11)', await benchFailover());
  }
  if (only.has('cluster')) {
    const { benchCluster } = await import('./cluster.js');
    print('One Redis vs Redis Cluster, replica acknowledgements off and on (issue 11)', await benchCluster());
  }
  if (only.has('thread')) {
    const { benchThread } = await import('./thread.js');
    print("isolation: 'thread' (issue 9)", await benchThread(url));
  }
  if (only.has('graphile')) {
    const { benchGraphile } = await import('./graphile.js');
    print('Against graphile-worker (issue 11)', await benchGraphile(url, redis?.socketUrl));
  }
  if (only.has('million')) {
    const { benchMillion } = await import('./million.js');
    print('A million executions (issue 11)', await benchMillion());
  }
} finally {
  await redis?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
