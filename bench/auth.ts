/**
 * What callers cost (BENCH_ONLY=auth): no-op executions/s over HTTP (POST /v1/executions, 64 in
 * flight) on a node with a callers file (20 callers, the one calling holding `execute:noop`), per-caller
 * rate limits on but never hit, and the audit trail on, beside a node with SPROCD_TOKEN alone (no rate
 * limit, no audit trail) in the same process and on the same Redis, in alternating batches.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'bullmq';
import { tokenSha256 } from '../src/auth/tokens.js';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import type { Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONCURRENCY = 16;
const IN_FLIGHT = 64;
const CALLERS = 20;
const TOKEN = 'bench-auth-token-0123456789abcdef';

/** A callers file of `CALLERS` callers; the last one (the one the benchmark calls as) may run noop. */
function callersFile(dir: string): string {
  const callers = Array.from({ length: CALLERS }, (_, i) => ({
    name: `caller-${i}`,
    tokenSha256: tokenSha256(`${TOKEN}-${i}`),
    scopes: i === CALLERS - 1 ? ['read', 'execute:noop'] : ['read', 'control'],
  }));
  const file = path.join(dir, 'callers.json');
  fs.writeFileSync(file, JSON.stringify({ callers }));
  return file;
}

/** A node of one side, up for the whole benchmark. */
interface Side {
  /** Seconds to have `total` no-op executions asked for over HTTP and run, to the last one. */
  drive(total: number): Promise<number>;
  /** Entries its audit trail holds. */
  audited(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts a node with `env`, called with `token`. */
async function side(redisUrl: string, env: Record<string, string>, token: string): Promise<Side> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-auth-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`,
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
  const { executions, redis, keys } = node.internals();
  const worker = (node as unknown as { workers: { worker: Worker } }).workers.worker;
  let completed = 0;
  let waiter: { until: number; resolve: () => void } | undefined;
  worker.on('completed', () => {
    completed++;
    if (waiter && completed >= waiter.until) {
      waiter.resolve();
      waiter = undefined;
    }
  });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ procedure: 'noop', params: null });
  return {
    async drive(total) {
      const finished = new Promise<void>((resolve) => (waiter = { until: completed + total, resolve }));
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < total) {
            next++;
            const res = await fetch(`${node.url}/v1/executions`, { method: 'POST', headers, body });
            if (res.status !== 202) {
              throw new Error(`POST /v1/executions answered ${res.status}: ${await res.text()}`);
            }
            await res.arrayBuffer();
          }
        }),
      );
      await finished;
      return (performance.now() - t0) / 1000;
    },
    audited: () => redis.xlen(keys.audit),
    async stop() {
      await executions.queue.obliterate({ force: true });
      await redis.del(keys.audit);
      await node.stop();
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * Runs the benchmark. Both nodes are up the whole time and take turns in short batches (each side
 * going first in every other round), so the drift of this VM's speed over minutes hits both alike;
 * the ratio is the median of the rounds' ratios.
 */
export async function benchAuth(redisUrl: string, batch = 2000, rounds = 15): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-auth-'));
  const base = await side(
    redisUrl,
    { SPROCD_TOKEN: TOKEN, SPROCD_AUDIT_MAX: '0', SPROCD_RATE_LIMIT: '0' },
    TOKEN,
  );
  const ours = await side(
    redisUrl,
    {
      SPROCD_CALLERS_FILE: callersFile(dir),
      SPROCD_AUDIT_MAX: '10000',
      // On, far above what the run sends: every request is counted, none refused.
      SPROCD_RATE_LIMIT: '100000000',
    },
    `${TOKEN}-${CALLERS - 1}`,
  );
  try {
    await base.drive(1000);
    await ours.drive(1000);
    const baseRates: number[] = [];
    const ourRates: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const [b, o] =
        i % 2 === 0
          ? [await base.drive(batch), await ours.drive(batch)]
          : [await ours.drive(batch), await base.drive(batch)].reverse();
      baseRates.push(batch / b!);
      ourRates.push(batch / o!);
      ratios.push(b! / o!);
    }
    return [
      {
        name: 'SPROCD_TOKEN alone: no-op executions/s over HTTP',
        value: median(baseRates),
        unit: 'executions/s',
      },
      {
        name: `callers file (${CALLERS}), rate limits, audit: executions/s`,
        value: median(ourRates),
        unit: 'executions/s',
      },
      {
        name: '  audit entries kept at the end (SPROCD_AUDIT_MAX 10000)',
        value: await ours.audited(),
        unit: 'entries',
      },
      {
        name: 'ratio callers+limits+audit / token, median of rounds (target >= 0.95)',
        value: median(ratios),
        unit: 'x',
      },
    ];
  } finally {
    await base.stop();
    await ours.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
