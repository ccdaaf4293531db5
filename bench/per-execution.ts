/**
 * Where the time goes per execution (issue 11), for bare BullMQ and sprocd on bench/graphile.ts's
 * drain (no-op jobs queued in bulk first, then run by a worker of concurrency 16):
 *  - the node: a CPU profile of the drain only (node:inspector), self time per function and per
 *    package, and the process's CPU time per execution;
 *  - Redis: INFO commandstats deltas over the drain (calls and µs per execution, per command; a
 *    command a script runs counts under its own name as well as in EVALSHA), and a second drain with
 *    the slow log recording every top-level command, which splits EVALSHA by script.
 * Run on its own: `node --import tsx bench/per-execution.ts` (PER_EXEC_TOTAL, default 20,000;
 * PER_EXEC_OUT, a directory for the .cpuprofile files and the JSON of the figures; PER_EXEC_SPROCD_ENV,
 * the sprocd node's settings as JSON, e.g. the drain's fastest '{"SPROCD_CONCURRENCY":"256",
 * "SPROCD_WORKER_BATCH":"256"}'). It starts its own
 * redis-server, as `npm run bench` does.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/redis/embedded.js';
import { bareBullmq, sprocdSide, type Side } from './graphile.js';

// Every script BullMQ and sprocd register goes through defineCommand: its SHA-1 names it in the slow log.
const scriptNames = new Map<string, string>();
const defineCommand = Redis.prototype.defineCommand;
Redis.prototype.defineCommand = function (this: Redis, name, definition) {
  scriptNames.set(createHash('sha1').update(definition.lua).digest('hex'), name);
  return defineCommand.call(this, name, definition);
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) per function and per package of a CPU profile. */
function selfTimes(profile: Profile): { functions: [string, number][]; packages: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(id)?.callFrame;
    if (!frame) {
      return;
    }
    const url = frame.url.replace(/^file:\/\//, '');
    const where = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
    const src = /\/(src|bench)\/(.*)$/.exec(url);
    const file = where ? `${where[1]}/${path.basename(where[2] ?? '')}` : src ? `${src[1]}/${src[2]}` : url;
    const key = `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + ms);
    const p = where ? where[1]! : src ? `sprocd ${src[1]}/` : url.startsWith('node:') ? 'node:*' : url || key;
    pkg.set(p, (pkg.get(p) ?? 0) + ms);
  });
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { functions: sorted(fn), packages: sorted(pkg) };
}

type Stats = Map<string, { calls: number; usec: number }>;

async function commandStats(redis: Redis): Promise<Stats> {
  const stats: Stats = new Map();
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (m) {
      stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    }
  }
  return stats;
}

function statsDelta(a: Stats, b: Stats, per: number): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const [name, after] of b) {
    const before = a.get(name) ?? { calls: 0, usec: 0 };
    const calls = after.calls - before.calls;
    if (calls > 0) {
      out.push([name, calls / per, (after.usec - before.usec) / per]);
    }
  }
  return out.sort((x, y) => y[2] - x[2]);
}

async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Top-level commands of the slow log (threshold 0), EVALSHA split by script: calls and µs per job. */
async function slowlogSplit(redis: Redis, per: number): Promise<[string, number, number][]> {
  const entries = (await redis.call('slowlog', 'get', '-1')) as [number, number, number, string[]][];
  const m = new Map<string, { calls: number; usec: number }>();
  for (const [, , usec, args] of entries) {
    const cmd = String(args[0] ?? '').toLowerCase();
    const name = cmd === 'evalsha' ? `evalsha ${scriptNames.get(String(args[1])) ?? String(args[1])}` : cmd;
    const e = m.get(name) ?? { calls: 0, usec: 0 };
    e.calls++;
    e.usec += usec;
    m.set(name, e);
  }
  return [...m]
    .map(([k, v]) => [k, v.calls / per, v.usec / per] as [string, number, number])
    .sort((x, y) => y[2] - x[2]);
}

const total = Number(process.env.PER_EXEC_TOTAL ?? 20_000);
const out = process.env.PER_EXEC_OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-per-exec-'));
fs.mkdirSync(out, { recursive: true });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-'));
const server = await startRedisServer({ dir, appendonly: false });
const probe = new Redis(server.url);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
const report: Record<string, unknown> = {};
const print = (line: string) => process.stdout.write(`${line}\n`);
try {
  // PER_EXEC_SPROCD_ENV: settings of the sprocd node as JSON, e.g. {"SPROCD_CONCURRENCY":"256","SPROCD_WORKER_BATCH":"256"}.
  const sprocdEnv = JSON.parse(process.env.PER_EXEC_SPROCD_ENV ?? '{}') as Record<string, string>;
  const sides: Side[] = [bareBullmq(server.url), await sprocdSide(server.url, 'sprocd', sprocdEnv)];
  for (const side of sides) {
    await side.drain(2000); // warm-up
  }
  for (const side of sides) {
    // First drain: rate, CPU and commandstats, no profiler running.
    let stats0: Stats = new Map();
    let cpu0 = process.cpuUsage();
    let redis0 = 0;
    const entry: Record<string, unknown> = {};
    report[side.label] = entry;
    print(`\n## ${side.label}: drain of ${total}`);
    const rate = await side.drain(total, {
      before: async () => {
        stats0 = await commandStats(probe);
        redis0 = await redisCpu(probe);
        cpu0 = process.cpuUsage();
      },
      after: async () => {
        const cpu = process.cpuUsage(cpu0);
        const redisUs = ((await redisCpu(probe)) - redis0) * 1e6;
        const stats = statsDelta(stats0, await commandStats(probe), total);
        Object.assign(entry, {
          nodeCpuUs: (cpu.user + cpu.system) / total,
          redisCpuUs: redisUs / total,
          commandstats: stats,
        });
        print(
          `node CPU ${((cpu.user + cpu.system) / total).toFixed(1)} µs/job, Redis CPU ${(redisUs / total).toFixed(1)} µs/job`,
        );
        print('\nRedis commandstats per job: calls, µs');
        for (const [name, calls, usec] of stats) {
          print(`  ${name.padEnd(24)} ${calls.toFixed(2).padStart(6)} ${usec.toFixed(2).padStart(7)}`);
        }
      },
    });
    entry.rate = rate;
    print(`rate ${rate.toFixed(0)} jobs/s`);
    // Second drain: the CPU profile (the profiler's own cost slows it).
    await side.drain(total, {
      before: async () => {
        await session.post('Profiler.start');
      },
      after: async () => {
        const profile = (await session.post('Profiler.stop')).profile as unknown as Profile;
        fs.writeFileSync(
          path.join(out, `${side.label.replace(/\W+/g, '-')}.cpuprofile`),
          JSON.stringify(profile),
        );
        const times = selfTimes(profile);
        const busy = times.functions.filter(([name]) => !/^\(idle\)|^post node:inspector/.test(name));
        const busyMs = busy.reduce((a, [, ms]) => a + ms, 0);
        Object.assign(entry, { busyMs, functions: busy.slice(0, 25), packages: times.packages.slice(0, 15) });
        print(`\nself time (profile of a drain, ${busyMs.toFixed(0)} ms busy), µs per job, share of busy:`);
        for (const [name, ms] of busy.slice(0, 20)) {
          print(
            `  ${((ms * 1000) / total).toFixed(2).padStart(7)} ${((100 * ms) / busyMs).toFixed(1).padStart(5)}%  ${name}`,
          );
        }
        print('\nby package, µs per job:');
        for (const [name, ms] of times.packages.slice(0, 12)) {
          print(`  ${((ms * 1000) / total).toFixed(2).padStart(7)}  ${name}`);
        }
      },
    });
    // Second drain: every top-level command in the slow log, to split EVALSHA by script.
    const slowTotal = Math.min(total, 5000);
    await probe.config('SET', 'slowlog-max-len', '1000000');
    await side.drain(slowTotal, {
      before: async () => {
        await probe.config('SET', 'slowlog-log-slower-than', '0');
        await probe.call('slowlog', 'reset');
      },
      after: async () => {
        await probe.config('SET', 'slowlog-log-slower-than', '-1');
        const split = await slowlogSplit(probe, slowTotal);
        entry.topLevel = split;
        print(`\ntop-level commands per job (slow log, drain of ${slowTotal}): calls, µs`);
        for (const [name, calls, usec] of split) {
          print(`  ${name.padEnd(40)} ${calls.toFixed(2).padStart(6)} ${usec.toFixed(2).padStart(7)}`);
        }
        await probe.call('slowlog', 'reset');
      },
    });
  }
  for (const side of sides) {
    await side.close();
  }
  fs.writeFileSync(path.join(out, 'per-execution.json'), JSON.stringify(report, null, 2));
  print(`\nprofiles and figures in ${out}`);
} finally {
  session.disconnect();
  probe.disconnect();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
