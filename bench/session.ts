/**
 * Session storage benchmark: locked read-modify-write cycles per second with 50 concurrent callers
 * spread over 2 processes, on one hot key and on 20 keys, beside the rate of bare serial GET+SET
 * round-trip pairs from one client to the same Redis (the floor a lock-protected cycle is measured
 * against), and `storage.get` reads per second.
 *
 * `npm run bench` runs it through bench/run.ts; standalone: `REDIS_URL=redis://... npx tsx bench/session.ts`.
 * The two load processes are this same file started with `--worker`. Knobs for exploring (the
 * defaults are the setup): BENCH_SESSION_MS (time of each compared figure, default 4000),
 * BENCH_SESSION_CALLERS (50), BENCH_SESSION_PROCESSES (2), BENCH_SESSION_DEBUG=1 (CPU per cycle),
 * BENCH_SESSION_SLOTS (SPROCD_STORAGE_SLOTS, default 1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { RedisConnection } from '../src/redis/redis-connection.js';
import { closeConnection, openConnection } from '../src/redis/connections.js';
import { createKeys } from '../src/redis/keys.js';
import { openSession, type SessionService } from '../src/session/index.js';
import type { Draft } from '../src/types.js';
import { deleteDeploymentKeys } from '../src/redis/cleanup.js';

/** One figure. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
}

const PROCESSES = Number(process.env.BENCH_SESSION_PROCESSES ?? 2);
const CALLERS = Number(process.env.BENCH_SESSION_CALLERS ?? 50);
const KEYS = 20;
/** Total time of each compared measurement, spread over slices of SLICE_MS. */
const DURATION_MS = Number(process.env.BENCH_SESSION_MS ?? 4000);
const SLOTS = Number(process.env.BENCH_SESSION_SLOTS ?? 1);
const SLICE_MS = 400;

function bump(draft: Draft): void {
  draft.n = (typeof draft.n === 'number' ? draft.n : 0) + 1;
}

async function openBenchSession(
  url: string,
  prefix: string,
  name: string,
): Promise<{ service: SessionService; command: RedisConnection }> {
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
    logger: pino({ level: 'warn' }, pino.destination(2)),
    storageSlots: SLOTS,
  });
  return { service, command };
}

/** Runs `callers` loops of locked increments for `durationMs`; returns how many cycles completed. */
async function hammer(
  service: SessionService,
  callers: number,
  keys: number,
  durationMs: number,
): Promise<number> {
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
  let opened: { service: SessionService; command: RedisConnection } | undefined;
  const out = (m: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line) as {
      cmd: string;
      url: string;
      prefix: string;
      callers: number;
      keys: number;
      ms: number;
    };
    if (c.cmd === 'open') {
      opened = await openBenchSession(c.url, c.prefix, `sprocd-bench-${process.pid}`);
      out({ ok: true });
    } else if (c.cmd === 'run' && opened !== undefined) {
      const cpu = process.cpuUsage();
      const count = await hammer(opened.service, c.callers, c.keys, c.ms);
      const used = process.cpuUsage(cpu);
      out({ count, cpuUs: used.user + used.system });
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
  const pending: { resolve(m: Record<string, unknown>): void; reject(err: Error): void }[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    pending.shift()?.resolve(JSON.parse(line) as Record<string, unknown>);
  });
  proc.once('exit', (code) => {
    for (const p of pending.splice(0)) {
      p.reject(new Error(`bench worker exited with ${code}`));
    }
  });
  return {
    proc,
    call: (command) =>
      new Promise((resolve, reject) => {
        if (proc.exitCode !== null) {
          reject(new Error(`bench worker exited with ${proc.exitCode}`));
          return;
        }
        pending.push({ resolve, reject });
        proc.stdin!.write(`${JSON.stringify(command)}\n`);
      }),
  };
}

// ---- measurements -----------------------------------------------------------------------------------

/** Bare serial GET+SET pairs for `durationMs`; how many, in how long. */
async function getSetPairs(redis: RedisConnection, durationMs: number): Promise<Slice> {
  const key = `bench-getset-${randomUUID()}`;
  const until = Date.now() + durationMs;
  const started = Date.now();
  let pairs = 0;
  while (Date.now() < until) {
    const v = await redis.get(key);
    await redis.set(key, String(Number(v ?? 0) + 1));
    pairs++;
  }
  const seconds = (Date.now() - started) / 1000;
  await redis.del(key);
  return { count: pairs, seconds };
}

/** Locked increments by CALLERS callers spread over the worker processes, for `ms`. */
async function spreadRun(children: Child[], keys: number, ms: number): Promise<Slice> {
  const started = Date.now();
  const counts = await Promise.all(
    children.map((c, i) =>
      c.call({ cmd: 'run', callers: CALLERS / PROCESSES + (i < CALLERS % PROCESSES ? 1 : 0), keys, ms }),
    ),
  );
  const elapsed = (Date.now() - started) / 1000;
  const total = counts.reduce((sum, m) => sum + Number(m.count), 0);
  if (process.env.BENCH_SESSION_DEBUG) {
    const cpu = counts.reduce((sum, m) => sum + Number(m.cpuUs), 0);
    process.stderr.write(
      `keys=${keys}: ${total} cycles, node CPU ${(cpu / total).toFixed(1)} us/cycle, ${(cpu / 1e6 / elapsed).toFixed(2)} cores\n`,
    );
  }
  return { count: total, seconds: elapsed };
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

/** What one slice of a measurement did. */
interface Slice {
  count: number;
  seconds: number;
}

/** A rate measured in slices: counts over times, summed. */
class Rate {
  count = 0;
  seconds = 0;
  add(slice: Slice): void {
    this.count += slice.count;
    this.seconds += slice.seconds;
  }
  get perSecond(): number {
    return this.seconds === 0 ? 0 : this.count / this.seconds;
  }
}

/**
 * Runs the session benchmark against `redisUrl` (under a fresh prefix, deleted afterwards). The
 * figures that are compared are measured in alternating slices (baseline, hot key, 20 keys, again
 * and again), so that a machine whose load changes during the run skews them all alike.
 */
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
    const baseline = new Rate();
    const hot = new Rate();
    const many = new Rate();
    const slices = Math.max(1, Math.round(DURATION_MS / SLICE_MS));
    for (let i = 0; i < slices; i++) {
      baseline.add(await getSetPairs(plain, SLICE_MS / 2));
      hot.add(await spreadRun(children, 1, SLICE_MS));
      many.add(await spreadRun(children, KEYS, SLICE_MS));
    }
    const serialReads = await readRates(local.service, Math.min(DURATION_MS, 2000), 1);
    const concurrentReads = await readRates(local.service, Math.min(DURATION_MS, 2000), CALLERS);
    const hotValue = (await local.service.session.storage.get<{ n: number }>('hot'))?.n ?? 0;
    return {
      rows: [
        { name: 'bare serial GET+SET pairs (one client)', value: baseline.perSecond, unit: 'pairs/s' },
        {
          name: `locked RMW, 1 hot key, ${CALLERS} callers over ${PROCESSES} processes`,
          value: hot.perSecond,
          unit: 'cycles/s',
        },
        {
          name: '  ratio to bare GET+SET pairs (target >= 0.8)',
          value: hot.perSecond / baseline.perSecond,
          unit: 'x',
        },
        {
          name: `locked RMW, ${KEYS} keys, ${CALLERS} callers over ${PROCESSES} processes`,
          value: many.perSecond,
          unit: 'cycles/s',
        },
        { name: '  ratio to 1 hot key (target >= 3)', value: many.perSecond / hot.perSecond, unit: 'x' },
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
    await deleteDeploymentKeys(plain, prefix);
    await closeConnection(plain);
  }
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain && process.argv.includes('--worker')) {
  await worker();
} else if (isMain) {
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') {
    process.stderr.write(
      'Set REDIS_URL (e.g. redis://127.0.0.1:6379) or run `npm run bench`, which starts its own Redis.\n',
    );
    process.exit(2);
  }
  const { rows } = await benchSession(url);
  for (const row of rows) {
    const value = row.value >= 100 ? row.value.toFixed(0) : row.value.toFixed(2);
    process.stdout.write(`${row.name.padEnd(64)} ${value.padStart(10)} ${row.unit}\n`);
  }
}
