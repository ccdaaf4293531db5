/**
 * Signal wake-up latency across two nodes (BENCH_ONLY=signals): node A (this process) triggers a
 * signal that a waiter on node B waits on, timed from just before A's trigger call to B's wait
 * resolving: A's script round trip, the PUBLISH, B's subscriber, B's waiter map. Both are real
 * SprocdNodes on one prefix. Two set-ups:
 *
 * - two processes: B runs in a child process (this file with `--waiter`), on the other core; times
 *   are taken with process.hrtime (CLOCK_MONOTONIC, one clock for every process of the machine);
 * - one process: A and B in this process, each with its own connections, sharing one event loop.
 *
 * The bare baseline of each is a raw PUBLISH on one connection to the message on another connection
 * (in the child, or in this process), on the same Redis. Signal and bare rounds alternate in batches
 * so both see the same machine. Knob: BENCH_SIGNALS_ROUNDS (2000 of each, per set-up).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import type { ProcessSync } from '../src/procedures/process-sync.js';
import { deleteDeploymentKeys } from '../src/redis/cleanup.js';
import type { Signal } from '../src/types.js';
import type { Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_SIGNALS_ROUNDS ?? 2000);
const BATCH = 100;
const WARMUP = 200;

const now = (): bigint => process.hrtime.bigint();
const owner = { abort: new AbortController().signal, note: () => undefined };
const baselineChannel = (prefix: string): string => `{${prefix}}:bench-baseline`;

async function startNode(url: string, prefix: string, name: string): Promise<SprocdNode> {
  const settings = loadSettings(
    {
      REDIS_URL: url,
      SPROCD_PREFIX: prefix,
      SPROCD_NODE_NAME: name,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_CONCURRENCY: '1',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger(settings.logLevel, { pretty: false }));
  await node.start();
  return node;
}

/** A round armed on B: when it fired (a promise in an object, so that `await` does not flatten it). */
interface Armed {
  fired: Promise<bigint>;
}

/** Node B's side of a round: arms a wait (or the bare subscriber) and reports when it fires. */
interface WaiterSide {
  /** Opens signal `id` and waits on it; resolves once the wait is in place, with when it wakes (ns). */
  armSignal(id: string): Promise<Armed>;
  /** Resolves once armed, with when the next bare message is heard (ns). */
  armBare(): Promise<Armed>;
  close(): Promise<void>;
}

/** Node B in this process. */
async function localWaiter(url: string, prefix: string): Promise<WaiterSide> {
  const node = await startNode(url, prefix, 'bench-b');
  const sync = node.internals().sync as ProcessSync;
  const command = node.internals().redis;
  const sub = new Redis(url);
  let heard: (at: bigint) => void = () => undefined;
  sub.on('message', () => heard(now()));
  await sub.subscribe(baselineChannel(prefix));
  return {
    async armSignal(id) {
      const opened = await sync.signals.open(id, owner);
      const fired = opened.wait().then(() => now());
      // The wait's read went out on B's command connection before this PING: it is in place.
      await command.ping();
      return { fired };
    },
    armBare() {
      return Promise.resolve({ fired: new Promise<bigint>((resolve) => (heard = resolve)) });
    },
    async close() {
      sub.disconnect();
      await node.stop();
    },
  };
}

/** Node B in a child process (this file with `--waiter`), spoken to by lines on stdin/stdout. */
async function childWaiter(url: string, prefix: string): Promise<WaiterSide> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--waiter'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, REDIS_URL: url, BENCH_SIGNALS_PREFIX: prefix },
  });
  const lines = readline.createInterface({ input: child.stdout });
  const queue: ((line: string) => void)[] = [];
  lines.on('line', (line) => queue.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve) => queue.push(resolve));
  const ask = async (command: string): Promise<Armed> => {
    const ready = next();
    const fired = next();
    child.stdin.write(`${command}\n`);
    await ready;
    return { fired: fired.then((line) => BigInt(line)) };
  };
  await next(); // "up"
  return {
    armSignal: (id) => ask(`w ${id}`),
    armBare: () => ask('b'),
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await exited;
    },
  };
}

/** The child: node B, answering "ready" when armed and the time (ns) when woken. */
async function waiterProcess(): Promise<void> {
  const side = await localWaiter(process.env.REDIS_URL ?? '', process.env.BENCH_SIGNALS_PREFIX ?? '');
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out('up');
  const input = readline.createInterface({ input: process.stdin });
  for await (const line of input) {
    const armed = line.startsWith('w ') ? await side.armSignal(line.slice(2)) : await side.armBare();
    out('ready');
    void armed.fired.then((at) => out(String(at)));
  }
  await side.close();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

/** Rounds of both kinds against `b`, alternating in batches: the wake-up and bare times (ms). */
async function measure(
  a: ProcessSync,
  pub: Redis,
  prefix: string,
  b: WaiterSide,
): Promise<{ wake: number[]; bare: number[] }> {
  const wakeRound = async (): Promise<number> => {
    const made: Signal = await a.signals.create('bench', owner);
    const armed = await b.armSignal(made.id);
    const t0 = now();
    void made.trigger('go');
    return Number((await armed.fired) - t0) / 1e6;
  };
  const bareRound = async (): Promise<number> => {
    const armed = await b.armBare();
    const t0 = now();
    void pub.publish(baselineChannel(prefix), 'x');
    return Number((await armed.fired) - t0) / 1e6;
  };
  for (let i = 0; i < WARMUP; i++) {
    await wakeRound();
    await bareRound();
  }
  const wake: number[] = [];
  const bare: number[] = [];
  for (let done = 0; done < ROUNDS; done += BATCH) {
    for (let i = 0; i < BATCH; i++) {
      bare.push(await bareRound());
    }
    for (let i = 0; i < BATCH; i++) {
      wake.push(await wakeRound());
    }
  }
  wake.sort((x, y) => x - y);
  bare.sort((x, y) => x - y);
  return { wake, bare };
}

function rows(label: string, m: { wake: number[]; bare: number[] }): Row[] {
  const out: Row[] = [];
  for (const p of [50, 99]) {
    out.push({ name: `${label}: signal wake-up A -> B, p${p}`, value: percentile(m.wake, p), unit: 'ms' });
    out.push({ name: `${label}: bare PUBLISH -> message, p${p}`, value: percentile(m.bare, p), unit: 'ms' });
  }
  out.push({ name: `${label}: max signal wake-up`, value: m.wake.at(-1) ?? NaN, unit: 'ms' });
  return out;
}

export async function benchSignals(url: string): Promise<Row[]> {
  const prefix = `bench-signals-${Date.now()}`;
  const a = await startNode(url, prefix, 'bench-a');
  const pub = new Redis(url);
  const result: Row[] = [];
  try {
    const sync = a.internals().sync as ProcessSync;
    const child = await childWaiter(url, prefix);
    try {
      result.push(...rows('two processes', await measure(sync, pub, prefix, child)));
    } finally {
      await child.close();
    }
    const local = await localWaiter(url, prefix);
    try {
      result.push(...rows('one process', await measure(sync, pub, prefix, local)));
    } finally {
      await local.close();
    }
  } finally {
    await a.stop();
    await deleteDeploymentKeys(pub, prefix);
    pub.disconnect();
  }
  result.push({ name: 'rounds of each kind, per set-up', value: ROUNDS, unit: '' });
  return result;
}

const isMain = process.argv[1] === fileURLToPath(import.meta.url);
if (isMain && process.argv.includes('--waiter')) {
  await waiterProcess();
} else if (isMain) {
  const url = process.env.REDIS_URL;
  if (!url) {
    throw new Error('REDIS_URL must name a Redis to measure on (bench/run.ts starts its own).');
  }
  for (const row of await benchSignals(url)) {
    process.stdout.write(`${row.name.padEnd(55)} ${row.value.toFixed(3)} ${row.unit}\n`);
  }
}
