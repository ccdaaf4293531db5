/**
 * What callers cost (BENCH_ONLY=auth): no-op executions/s over HTTP (POST /v1/executions, 64 in
 * flight) on a node with a callers file (20 callers, the one calling holding `execute:noop`), per-caller
 * rate limits on but never hit, and the audit trail on, beside a node with SPROCD_TOKEN alone (no rate
 * limit, no audit trail) in the same process and on the same Redis, in alternating batches.
 * BENCH_AUTH_PARTS=1 adds nodes with each part alone (callers; callers + audit; callers + rate limit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenSha256 } from '../src/auth/tokens.js';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import type { Row } from './queue.js';
import { procedureWorkers } from './bench-node.js';

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
  const worker = procedureWorkers(node);
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
      await executions.queues[0]!.obliterate({ force: true });
      await redis.del(keys.audit);
      await node.stop();
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** A node's settings beside SPROCD_TOKEN alone, and the token it is called with. */
interface Variant {
  readonly label: string;
  readonly env: Record<string, string>;
  readonly token: string;
}

/**
 * Runs the benchmark. All nodes are up the whole time and take turns in short batches (the order
 * rotating every round), so the drift of this VM's speed over minutes hits all alike; each ratio
 * is the median of the rounds' ratios. With BENCH_AUTH_PARTS=1, each part is measured alone too;
 * BENCH_AUTH_ROUNDS sets the rounds (15).
 */
export async function benchAuth(
  redisUrl: string,
  batch = 2000,
  rounds = Number(process.env.BENCH_AUTH_ROUNDS ?? 15),
): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-auth-'));
  const callers = callersFile(dir);
  const ourToken = `${TOKEN}-${CALLERS - 1}`;
  // On, far above what the run sends: every request is counted, none refused.
  const limited = { SPROCD_RATE_LIMIT: '100000000' };
  const variants: Variant[] = [
    {
      label: `callers file (${CALLERS}), rate limits, audit`,
      env: { SPROCD_CALLERS_FILE: callers, SPROCD_AUDIT_MAX: '10000', ...limited },
      token: ourToken,
    },
  ];
  if (process.env.BENCH_AUTH_PARTS === '1') {
    variants.push(
      {
        label: `callers file (${CALLERS}) alone`,
        env: { SPROCD_CALLERS_FILE: callers, SPROCD_AUDIT_MAX: '0', SPROCD_RATE_LIMIT: '0' },
        token: ourToken,
      },
      {
        label: 'callers file + audit',
        env: { SPROCD_CALLERS_FILE: callers, SPROCD_AUDIT_MAX: '10000', SPROCD_RATE_LIMIT: '0' },
        token: ourToken,
      },
      {
        label: 'callers file + rate limit',
        env: { SPROCD_CALLERS_FILE: callers, SPROCD_AUDIT_MAX: '0', ...limited },
        token: ourToken,
      },
    );
  }
  const base = await side(
    redisUrl,
    { SPROCD_TOKEN: TOKEN, SPROCD_AUDIT_MAX: '0', SPROCD_RATE_LIMIT: '0' },
    TOKEN,
  );
  const others: Side[] = [];
  try {
    for (const variant of variants) {
      others.push(await side(redisUrl, variant.env, variant.token));
    }
    const all = [base, ...others];
    for (const s of all) {
      await s.drive(1000);
    }
    const rates: number[][] = all.map(() => []);
    const ratios: number[][] = others.map(() => []);
    for (let i = 0; i < rounds; i++) {
      const seconds: number[] = new Array<number>(all.length);
      for (let k = 0; k < all.length; k++) {
        const j = (k + i) % all.length;
        seconds[j] = await all[j]!.drive(batch);
      }
      seconds.forEach((t, j) => rates[j]!.push(batch / t));
      others.forEach((_, j) => ratios[j]!.push(seconds[0]! / seconds[j + 1]!));
    }
    const rows: Row[] = [
      {
        name: 'SPROCD_TOKEN alone: no-op executions/s over HTTP',
        value: median(rates[0]!),
        unit: 'executions/s',
      },
      { name: `${variants[0]!.label}: executions/s`, value: median(rates[1]!), unit: 'executions/s' },
      {
        name: '  audit entries kept at the end (SPROCD_AUDIT_MAX 10000)',
        value: await others[0]!.audited(),
        unit: 'entries',
      },
      {
        name: 'ratio callers+limits+audit / token, median of rounds (target >= 0.95)',
        value: median(ratios[0]!),
        unit: 'x',
      },
    ];
    variants
      .slice(1)
      .forEach((variant, j) =>
        rows.push({ name: `  ratio ${variant.label} / token`, value: median(ratios[j + 1]!), unit: 'x' }),
      );
    return rows;
  } finally {
    await base.stop();
    for (const s of others) {
      await s.stop();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
