/**
 * What callers cost (BENCH_ONLY=auth): no-op executions/s over HTTP (POST /v1/executions, 64 in
 * flight) on a node with a callers file (20 callers, the one calling holding `execute:noop`), per-caller
 * rate limits on but never hit, and the audit trail on, beside a node with SPROCD_TOKEN alone (no rate
 * limit, no audit trail), in pairs of runs of the same run.
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

/** Executions/s of `total` no-op executions asked for over HTTP, until the last one has run. */
async function run(
  redisUrl: string,
  env: Record<string, string>,
  token: string,
  total: number,
): Promise<{ rate: number; audited: number }> {
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
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  const worker = (node as unknown as { workers: { worker: Worker } }).workers.worker;
  worker.on('completed', () => {
    if (++done === total) {
      allDone();
    }
  });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const body = JSON.stringify({ procedure: 'noop', params: null });
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
  const rate = total / ((performance.now() - t0) / 1000);
  const audited = await redis.xlen(keys.audit);
  await executions.queue.obliterate({ force: true });
  await redis.del(keys.audit);
  await node.stop();
  return { rate, audited };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * Runs the benchmark: a warm-up of each side, then `rounds` pairs of runs, the two sides taking turns
 * to go first (this VM's speed drifts over minutes). The ratio is the median of each pair's ratio.
 */
export async function benchAuth(redisUrl: string, total = 10_000, rounds = 6): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-auth-'));
  try {
    const tokenOnly = { SPROCD_TOKEN: TOKEN, SPROCD_AUDIT_MAX: '0', SPROCD_RATE_LIMIT: '0' };
    const scoped = {
      SPROCD_CALLERS_FILE: callersFile(dir),
      SPROCD_AUDIT_MAX: '10000',
      // On, far above what the run sends: every request is counted, none refused.
      SPROCD_RATE_LIMIT: '100000000',
    };
    const scopedToken = `${TOKEN}-${CALLERS - 1}`;
    const baseRun = async () => (await run(redisUrl, tokenOnly, TOKEN, total)).rate;
    const oursRun = () => run(redisUrl, scoped, scopedToken, total);
    await run(redisUrl, tokenOnly, TOKEN, 1000);
    await run(redisUrl, scoped, scopedToken, 1000);
    const base: number[] = [];
    const ours: number[] = [];
    const ratios: number[] = [];
    let audited = 0;
    for (let i = 0; i < rounds; i++) {
      let b: number;
      let o: { rate: number; audited: number };
      if (i % 2 === 0) {
        b = await baseRun();
        o = await oursRun();
      } else {
        o = await oursRun();
        b = await baseRun();
      }
      base.push(b);
      ours.push(o.rate);
      ratios.push(o.rate / b);
      audited = o.audited;
    }
    return [
      { name: 'SPROCD_TOKEN alone: no-op executions/s over HTTP', value: median(base), unit: 'executions/s' },
      {
        name: `callers file (${CALLERS}), rate limits, audit: executions/s`,
        value: median(ours),
        unit: 'executions/s',
      },
      { name: '  audit entries written in the last round', value: audited, unit: 'entries' },
      {
        name: 'ratio callers+limits+audit / token, median of pairs (target >= 0.95)',
        value: median(ratios),
        unit: 'x',
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
