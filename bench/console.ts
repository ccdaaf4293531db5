/**
 * The operator's side under load (issue 7): what live clients cost a node, how fast their events
 * arrive, and how fast the executions list answers at 100,000 executions.
 *
 * - Throughput: no-op executions through executeOnServer on one node (as bench/queue.ts), alternating
 *   rounds with no client and with 3 consoles on the executions page plus 3 `sprocd watch` streams
 *   (bench/console-clients.ts, a process of their own, as on operators' machines; at nice 10, so the
 *   CPU they take on this shared 2-core machine is what the node and Redis leave).
 * - Delivery latency: from an execution's completion (the time BullMQ's event carries) to its arrival
 *   at the clients, at a steady 200 executions/s and during the throughput rounds; the baseline is a
 *   bare XREAD of the same BullMQ event stream in the node's process.
 * - The list: 100,000 finished executions of 5 procedures, GET /v1/executions?procedure=… first pages
 *   and the pages after them by cursor; the baseline is BullMQ's own getJobs of the newest 50.
 *
 * Knobs: BENCH_CONSOLE_ROUND (executions per round, 30,000), BENCH_CONSOLE_LISTED (executions listed,
 * 100,000; 0 skips the list), and for the clients BENCH_CONSOLE_RELOAD_MS (1000) and
 * BENCH_CONSOLE_DIGEST_MS (1000, as the console; 0: the consoles take each event).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import { bullQueueKeys } from '../src/redis/bullmq-internals.js';
import type { Row } from './queue.js';
import { procedureWorkers } from './bench-node.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONCURRENCY = 16;
const IN_FLIGHT = 64;
const PROCEDURES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];

/** What the clients process reports for a stretch of time. */
interface ClientReport {
  events: number;
  reloads: number;
  ended: number;
  samples: number;
  p50: number;
  p99: number;
  max: number;
  cpuShare: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function startNode(redisUrl: string, env: Record<string, string>): Promise<SprocdNode> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-console-${Date.now()}`,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_CONCURRENCY: String(CONCURRENCY),
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
      ...env,
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger('silent', { pretty: false }));
  await node.start();
  return node;
}

/** Resolves when the node's worker has completed `total` more executions. */
function completions(node: SprocdNode, total: number): Promise<void> {
  const worker = procedureWorkers(node);
  return new Promise((resolve) => {
    let done = 0;
    const onDone = () => {
      if (++done === total) {
        worker.off('completed', onDone);
        resolve();
      }
    };
    worker.on('completed', onDone);
  });
}

/** CPU seconds Redis and this process (the node) have used so far. */
async function cpuNow(redis: Redis): Promise<{ redis: number; node: number }> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  const own = process.cpuUsage();
  return {
    redis: field('used_cpu_user') + field('used_cpu_sys'),
    node: (own.user + own.system) / 1e6,
  };
}

/** Queues `total` executions with IN_FLIGHT requests at a time; resolves when all have completed. */
async function run(node: SprocdNode, total: number, procedure: (i: number) => string): Promise<number> {
  const executions = node.internals().executions;
  const finished = completions(node, total);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        await executions.execute(procedure(next++), null);
      }
    }),
  );
  await finished;
  return total / ((performance.now() - t0) / 1000);
}

/** The clients process: 3 consoles and 3 watch streams on `url`. */
class Clients {
  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: AsyncIterator<string>,
  ) {}

  static async open(url: string): Promise<Clients> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'console-clients.ts'), url], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.value !== 'ready') {
      throw new Error(`the clients did not start: ${String(first.value)}`);
    }
    os.setPriority(child.pid!, 10);
    if (process.env.BENCH_CLIENTS_SCHED === 'idle') {
      // Diagnostic: the clients take only CPU time nothing else wants (SCHED_IDLE), as on other machines.
      spawnSync('chrt', ['--idle', '-a', '-p', '0', String(child.pid)], { stdio: 'ignore' });
    }
    return new Clients(child, lines);
  }

  mark(): void {
    this.child.stdin!.write('mark\n');
  }

  async report(): Promise<ClientReport> {
    this.child.stdin!.write('report\n');
    const line = await this.lines.next();
    return JSON.parse(String(line.value)) as ClientReport;
  }

  async close(): Promise<void> {
    this.child.stdin!.write('quit\n');
    await once(this.child, 'exit');
  }
}

/** Completion-to-arrival of BullMQ's `completed` events read with a bare XREAD, in this process. */
class BareReader {
  private readonly redis: Redis;
  private latencies: number[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(redisUrl: string, stream: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    this.loop = this.read(stream);
  }

  private async read(stream: string): Promise<void> {
    let last = '$';
    while (!this.stopped) {
      const reply = (await this.redis.xread('BLOCK', 200, 'STREAMS', stream, last)) as
        [string, [string, string[]][]][] | null;
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        last = id;
        if (fields[1] === 'completed') {
          this.latencies.push(Date.now() - Number(id.slice(0, id.indexOf('-'))));
        }
      }
    }
  }

  mark(): void {
    this.latencies = [];
  }

  p99(): number {
    return percentile(
      [...this.latencies].sort((a, b) => a - b),
      99,
    );
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.redis.disconnect();
  }
}

/** Runs `perSecond` executions a second for `seconds`, each as a lone request. */
async function paced(node: SprocdNode, perSecond: number, seconds: number): Promise<void> {
  const executions = node.internals().executions;
  const total = perSecond * seconds;
  const finished = completions(node, total);
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) {
      await new Promise((r) => setTimeout(r, wait));
    }
    executions.execute('noop', null).catch(() => undefined);
  }
  await finished;
}

async function throughputAndLatency(redisUrl: string, total: number, rounds: number): Promise<Row[]> {
  const node = await startNode(redisUrl, {});
  const bare = new BareReader(redisUrl, bullQueueKeys(node.internals().keys).events);
  const cpuProbe = new Redis(redisUrl);
  try {
    // Warm-up of both sides.
    await run(node, 2000, () => 'noop');
    let clients = await Clients.open(node.url);
    await run(node, 2000, () => 'noop');
    await clients.close();

    const none: number[] = [];
    const withClients: number[] = [];
    // CPU ms per 1,000 executions, of Redis and of the node's process, without and with clients.
    const cpuNone: { redis: number; node: number }[] = [];
    const cpuWith: { redis: number; node: number }[] = [];
    const per1000 = (a: { redis: number; node: number }, b: { redis: number; node: number }) => ({
      redis: ((b.redis - a.redis) * 1e6) / total,
      node: ((b.node - a.node) * 1e6) / total,
    });
    const loadedP99: number[] = [];
    const cpu: number[] = [];
    let dropped = 0;
    for (let i = 0; i < rounds; i++) {
      let before = await cpuNow(cpuProbe);
      none.push(await run(node, total, () => 'noop'));
      cpuNone.push(per1000(before, await cpuNow(cpuProbe)));
      clients = await Clients.open(node.url);
      clients.mark();
      before = await cpuNow(cpuProbe);
      withClients.push(await run(node, total, () => 'noop'));
      cpuWith.push(per1000(before, await cpuNow(cpuProbe)));
      // The last events of the round are still on their way: let them arrive before the report.
      await new Promise((r) => setTimeout(r, 500));
      const report = await clients.report();
      loadedP99.push(report.p99);
      cpu.push(report.cpuShare);
      dropped += report.ended;
      await clients.close();
    }

    // Delivery latency at a steady rate, with the clients open, beside the bare reader.
    clients = await Clients.open(node.url);
    await paced(node, 200, 1);
    clients.mark();
    bare.mark();
    await paced(node, 200, 10);
    await new Promise((r) => setTimeout(r, 500));
    const steady = await clients.report();
    const bareP99 = bare.p99();
    await clients.close();

    const rate = median(none);
    const loaded = median(withClients);
    return [
      { name: 'no client: no-op executions/s', value: rate, unit: 'executions/s' },
      { name: '3 consoles + 3 watch streams: no-op executions/s', value: loaded, unit: 'executions/s' },
      { name: 'throughput ratio with / without clients (target >= 0.95)', value: loaded / rate, unit: 'x' },
      { name: 'clients process CPU (share of one core, at nice 10)', value: median(cpu), unit: 'cores' },
      {
        name: 'Redis CPU per 1,000 executions, no client / with clients',
        value: median(cpuNone.map((c) => c.redis)),
        unit: `ms / ${median(cpuWith.map((c) => c.redis)).toFixed(0)} ms`,
      },
      {
        name: 'node process CPU per 1,000 executions, no client / with clients',
        value: median(cpuNone.map((c) => c.node)),
        unit: `ms / ${median(cpuWith.map((c) => c.node)).toFixed(0)} ms`,
      },
      { name: 'client streams dropped by the node during the rounds', value: dropped, unit: 'streams' },
      {
        name: 'event delivery p99 at full load (completion to client)',
        value: median(loadedP99),
        unit: 'ms',
      },
      { name: 'event delivery p50 at 200 executions/s', value: steady.p50, unit: 'ms' },
      { name: 'event delivery p99 at 200 executions/s (target <= 50)', value: steady.p99, unit: 'ms' },
      { name: 'baseline: bare XREAD of the event stream, p99 at 200/s', value: bareP99, unit: 'ms' },
      { name: 'events received by the 6 clients at 200/s', value: steady.events, unit: 'events' },
    ];
  } finally {
    await bare.close();
    cpuProbe.disconnect();
    await node.internals().executions.queues[0]!.obliterate({ force: true });
    await node.stop();
  }
}

/** Latencies of `count` sequential GETs of `path`, and the last answer. */
async function timeGets(url: string, paths: string[]): Promise<number[]> {
  const times: number[] = [];
  for (const p of paths) {
    const t = performance.now();
    const res = await fetch(`${url}${p}`);
    await res.arrayBuffer();
    times.push(performance.now() - t);
    if (!res.ok) {
      throw new Error(`GET ${p}: ${res.status}`);
    }
  }
  return times.sort((a, b) => a - b);
}

async function listPage(redisUrl: string, total: number, requests: number): Promise<Row[]> {
  const node = await startNode(redisUrl, {
    SPROCD_JOBS_DIR: path.join(HERE, 'console-jobs'),
    SPROCD_KEEP_FINISHED: String(total * 2),
    SPROCD_KEEP_FINISHED_S: String(7 * 24 * 3600),
  });
  try {
    const t0 = performance.now();
    await run(node, total, (i) => PROCEDURES[i % PROCEDURES.length] as string);
    const fillS = (performance.now() - t0) / 1000;
    const first = `/v1/executions?procedure=gamma&limit=50`;
    await timeGets(
      node.url,
      Array.from({ length: 20 }, () => first),
    ); // warm-up
    const firstPages = await timeGets(
      node.url,
      Array.from({ length: requests }, () => first),
    );
    // The pages after the first, by cursor, as far as `requests` pages go.
    const cursorTimes: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const t = performance.now();
      const res = await fetch(`${node.url}${first}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      const body = (await res.json()) as { items: unknown[]; nextCursor?: string | null };
      if (cursor) {
        cursorTimes.push(performance.now() - t);
      }
      cursor = body.nextCursor ?? undefined;
      pages++;
    } while (cursor && pages < requests);
    cursorTimes.sort((a, b) => a - b);

    const queue = node.internals().executions.queues[0]!;
    const bare: number[] = [];
    for (let i = 0; i < requests; i++) {
      const t = performance.now();
      await queue.getJobs(['completed'], 0, 49);
      bare.push(performance.now() - t);
    }
    bare.sort((a, b) => a - b);
    const rows: Row[] = [
      { name: `filling ${total} executions of ${PROCEDURES.length} procedures`, value: fillS, unit: 's' },
      {
        name: 'list filtered by procedure, first page of 50: p50',
        value: percentile(firstPages, 50),
        unit: 'ms',
      },
      {
        name: 'list filtered by procedure, first page of 50: p99 (target <= 50)',
        value: percentile(firstPages, 99),
        unit: 'ms',
      },
    ];
    rows.push(
      cursorTimes.length > 0
        ? {
            name: `next pages by cursor (${cursorTimes.length}): p99`,
            value: percentile(cursorTimes, 99),
            unit: 'ms',
          }
        : { name: 'next pages by cursor: none (no nextCursor in the answer)', value: 0, unit: 'pages' },
    );
    rows.push({
      name: "baseline: BullMQ's getJobs of the newest 50 completed, p99",
      value: percentile(bare, 99),
      unit: 'ms',
    });
    return rows;
  } finally {
    await node.internals().executions.queues[0]!.obliterate({ force: true });
    await node.stop();
  }
}

/** Runs the console benchmark (see the top of this file); smaller sizes make a quick check of it. */
export async function benchConsole(
  redisUrl: string,
  size: { executions: number; rounds: number; listed: number; requests: number } = {
    // Rounds of at least a few seconds: at 12,000 executions/s a round of 10,000 lasted under one.
    executions: Number(process.env.BENCH_CONSOLE_ROUND ?? 30_000),
    rounds: 3,
    listed: Number(process.env.BENCH_CONSOLE_LISTED ?? 100_000),
    requests: 200,
  },
): Promise<Row[]> {
  const rows = await throughputAndLatency(redisUrl, size.executions, size.rounds);
  if (size.listed > 0) {
    rows.push(...(await listPage(redisUrl, size.listed, size.requests)));
  }
  return rows;
}
