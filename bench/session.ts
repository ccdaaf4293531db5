/**
 * Session storage benchmark: locked read-modify-write cycles per second with 50 concurrent callers
 * spread over 2 processes, on one hot key and on 20 keys, beside the rate of bare serial GET+SET
 * round-trip pairs from one client to the same Redis (the floor a lock-protected cycle is measured
 * against), and `storage.get` reads per second.
 *
 * `npm run bench` runs it through bench/run.ts; standalone: `REDIS_URL=redis://... npx tsx bench/session.ts`.
 * The two load processes are this same file started with `--worker`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { closeConnection, openConnection } from '../src/redis/connections.js';
import { createKeys } from '../src/redis/keys.js';
import { openSession, type SessionService } from '../src/session/index.js';
import type { Draft } from '../src/types.js';

/** One figure. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
}

const PROCESSES = Number(process.env.BENCH_SESSION_PROCESSES ?? 2);
const CALLERS = Number(process.env.BENCH_SESSION_CALLERS ?? 50);
const KEYS = 20;
const DURATION_MS = Number(process.env.BENCH_SESSION_MS ?? 3000);

function bump(draft: Draft): void {
  draft.n = (typeof draft.n === 'number' ? draft.n : 0) + 1;
}

async function openBenchSession(url: string, prefix: string, name: string): Promise<{ service: SessionService; command: Redis }> {
  const command = openConnection('command', { url, timeoutMs: 10_000, name });
  const service = await openSession({
    command,
    redisUrl: url,
    keys: createKeys(prefix),
    userName: 'sprocd',
    lockLeaseMs: 10_000,
    lockTimeoutMs: 60_000,
    maxEntryBytes: 1024 * 1024,
    connectionName: name,
    logger: pino({ level: 'warn' }),
  });
  return { service, command };
}

/** Runs `callers` loops of locked increments for `durationMs`; returns how many cycles completed. */
async function hammer(service: SessionService, callers: number, keys: number, durationMs: number): Promise<number> {
  const storage = service.session.storage;
  const until = Date.now() + durationMs;
  let done = 0;
  const loop = async (caller: number) => {
    let i = caller;
    while (Date.now() < until) {
      await storage.use(keys === 1 ? 'hot' : `k${i % keys}`, bump);
      i += callers;
      done++;
    }
  };
  await Promise.all(Array.from({ length: callers }, (_, c) => loop(c)));
  return done;
}

// ---- worker process -------------------------------------------------------------------------------

async function worker(): Promise<void> {
  let opened: { service: SessionService; command: Redis } | undefined;
  const out = (m: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line) as { cmd: string; url: string; prefix: string; callers: number; keys: number; ms: number };
    if (c.cmd === 'open') {
      opened = await openBenchSession(c.url, c.prefix, `sprocd-bench-${process.pid}`);
      out({ ok: true });
    } else if (c.cmd === 'run' && opened !== undefined) {
      const count = await hammer(opened.service, c.callers, c.keys, c.ms);
      out({ count });
    } else if (c.cmd === 'close') {
      await opened?.service.close();
      if (opened !== undefined) {
        await closeConnection(opened.command);
      }
      out({ ok: true });
      break;
    }
  }
  rl.close();
}

interface Child {
  proc: ChildProcess;
  call(command: Record<string, unknown>): Promise<Record<string, unknown>>;
}

function spawnWorker(): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const pending: ((m: Record<string, unknown>) => void)[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    pending.shift()?.(JSON.parse(line) as Record<string, unknown>);
  });
  return {
    proc,
    call: (command) =>
      new Promise((resolve, reject) => {
        pending.push(resolve);
        proc.once('exit', (code) => reject(new Error(`bench worker exited with ${code}`)));
        proc.stdin!.write(`${JSON.stringify(command)}\n`);
      }),
  };
}

// ---- measurements -----------------------------------------------------------------------------------

async function getSetPairs(redis: Redis, durationMs: number): Promise<number> {
  const key = `bench-getset-${randomUUID()}`;
  const until = Date.now() + durationMs;
  const started = Date.now();
  let pairs = 0;
  while (Date.now() < until) {
    const v = await redis.get(key);
    await redis.set(key, String(Number(v ?? 0) + 1));
    pairs++;
  }
  const rate = pairs / ((Date.now() - started) / 1000);
  await redis.del(key);
  return rate;
}

async function spreadRun(children: Child[], keys: number, ms: number): Promise<number> {
  const started = Date.now();
  const counts = await Promise.all(
    children.map((c, i) =>
      c.call({ cmd: 'run', callers: CALLERS / PROCESSES + (i < CALLERS % PROCESSES ? 1 : 0), keys, ms }),
    ),
  );
  const elapsed = (Date.now() - started) / 1000;
  return counts.reduce((sum, m) => sum + Number(m.count), 0) / elapsed;
}

async function readRates(service: SessionService, ms: number, callers: number): Promise<number> {
  const storage = service.session.storage;
  const until = Date.now() + ms;
  const started = Date.now();
  let reads = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (Date.now() < until) {
        await storage.get('hot');
        reads++;
      }
    }),
  );
  return reads / ((Date.now() - started) / 1000);
}

/** Runs the session benchmark against `redisUrl` (under a fresh prefix, deleted afterwards). */
export async function benchSession(redisUrl: string): Promise<{ rows: BenchRow[] }> {
  const prefix = `bench-session-${randomUUID().slice(0, 8)}`;
  const plain = openConnection('command', { url: redisUrl, timeoutMs: 10_000, name: 'sprocd-bench-plain' });
  const local = await openBenchSession(redisUrl, prefix, 'sprocd-bench-local');
  const children = Array.from({ length: PROCESSES }, spawnWorker);
  try {
    await Promise.all(children.map((c) => c.call({ cmd: 'open', url: redisUrl, prefix })));
    // Warm-up: JIT, script cache, connections.
    await getSetPairs(plain, 300);
    await spreadRun(children, 1, 300);
    await spreadRun(children, KEYS, 300);
    // Baseline before and after the locked runs, averaged, so drift on a shared machine cancels out.
    const baseline1 = await getSetPairs(plain, DURATION_MS);
    const hot = await spreadRun(children, 1, DURATION_MS);
    const many = await spreadRun(children, KEYS, DURATION_MS);
    const baseline2 = await getSetPairs(plain, DURATION_MS);
    const baseline = (baseline1 + baseline2) / 2;
    const serialReads = await readRates(local.service, Math.min(DURATION_MS, 2000), 1);
    const concurrentReads = await readRates(local.service, Math.min(DURATION_MS, 2000), CALLERS);
    const hotValue = (await local.service.session.storage.get<{ n: number }>('hot'))?.n ?? 0;
    return {
      rows: [
        { name: 'bare serial GET+SET pairs (one client)', value: baseline, unit: 'pairs/s' },
        { name: `locked RMW, 1 hot key, ${CALLERS} callers over ${PROCESSES} processes`, value: hot, unit: 'cycles/s' },
        { name: '  ratio to bare GET+SET pairs (target >= 0.8)', value: hot / baseline, unit: 'x' },
        { name: `locked RMW, ${KEYS} keys, ${CALLERS} callers over ${PROCESSES} processes`, value: many, unit: 'cycles/s' },
        { name: '  ratio to 1 hot key (target >= 3)', value: many / hot, unit: 'x' },
        { name: 'storage.get, 1 caller', value: serialReads, unit: 'reads/s' },
        { name: `storage.get, ${CALLERS} concurrent callers`, value: concurrentReads, unit: 'reads/s' },
        { name: 'hot key counter after all runs (sanity)', value: hotValue, unit: 'increments' },
      ],
    };
  } finally {
    await Promise.allSettled(children.map((c) => c.call({ cmd: 'close' })));
    for (const c of children) {
      c.proc.kill('SIGKILL');
    }
    await local.service.close();
    await closeConnection(local.command);
    let cursor = '0';
    do {
      const [next, keys] = await plain.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) {
        await plain.unlink(...keys);
      }
    } while (cursor !== '0');
    await closeConnection(plain);
  }
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain && process.argv.includes('--worker')) {
  await worker();
} else if (isMain) {
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    process.stderr.write('Set REDIS_URL (e.g. redis://127.0.0.1:6379) or run `npm run bench`, which starts its own Redis.\n');
    process.exit(2);
  }
  const { rows } = await benchSession(url);
  for (const row of rows) {
    const value = row.value >= 100 ? row.value.toFixed(0) : row.value.toFixed(2);
    process.stdout.write(`${row.name.padEnd(64)} ${value.padStart(10)} ${row.unit}\n`);
  }
}
