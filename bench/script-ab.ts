/**
 * Two versions of the batched worker's script (src/redis/lua/finishAndTake-9.lua) against each other, in
 * Redis's time per job: the measure behind the script's changes in docs/BENCHMARKS.md ("The script,
 * call by call"). Not part of `npm run bench`; run on its own:
 *
 *   SCRIPT_A=/tmp/old.lua SCRIPT_B=src/redis/lua/finishAndTake-9.lua node --import tsx bench/script-ab.ts
 *
 * On a VM whose speed drifts by a third from one minute to the next, two runs one after the other
 * cannot tell 5% apart. So both versions run on the same drain, call by call in turn: A's calls as EVAL,
 * B's as EVALSHA, which Redis counts apart in `INFO commandstats`. Each call files the jobs the call
 * before it took (whichever version took them: they leave Redis alike) and takes SCRIPT_K more
 * (default 64), until SCRIPT_TOTAL executions (default 20,000, queued by an in-process node) are done;
 * SCRIPT_ROUNDS rounds (default 4). Printed: µs per job in each version (its calls' time over the jobs
 * they filed and took, halved) and B/A per round. EVAL hashes the script on every call: with A = B the
 * ratio comes out about 1.005, the bias to subtract. Both versions take the same arguments: compare
 * versions of one interface. SCRIPT_SIDE_KEYS=1 deletes side keys in retention (BullMQ's way).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { bullQueueKeys } from '../src/redis/bullmq-internals.js';
import { startRedisServer } from '../src/redis/embedded.js';
import { finishAndTakeKeys } from '../src/redis/scripts.js';
import { median, startBenchNode } from './bench-node.js';

const fileA = process.env.SCRIPT_A ?? 'src/redis/lua/finishAndTake-9.lua';
const fileB = process.env.SCRIPT_B ?? 'src/redis/lua/finishAndTake-9.lua';
const perCall = Number(process.env.SCRIPT_K ?? 64);
const total = Number(process.env.SCRIPT_TOTAL ?? 20_000);
const rounds = Number(process.env.SCRIPT_ROUNDS ?? 4);
const sideKeys = process.env.SCRIPT_SIDE_KEYS === '1' ? '1' : '0';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-script-ab-'));
const server = await startRedisServer({ dir, appendonly: false });
const redis = new Redis(server.url);
const bench = await startBenchNode(server.url, 'script-ab', { SPROCD_CONCURRENCY: '16' });
// Only this loop takes: the node queues the executions, its Worker stays paused.
await bench.worker.pause(true);
const bull = bullQueueKeys(bench.node.internals().keys);
const keys = finishAndTakeKeys(bull);
const textA = fs.readFileSync(fileA, 'utf8');
const shaB = (await redis.script('LOAD', fs.readFileSync(fileB, 'utf8'))) as string;

/** `INFO commandstats`: µs spent in EVAL and in EVALSHA so far. */
async function scriptTimes(): Promise<{ eval: number; evalsha: number }> {
  const info = await redis.info('commandstats');
  const usec = (name: string) =>
    Number(new RegExp(`cmdstat_${name}:calls=\\d+,usec=(\\d+)`).exec(info)?.[1] ?? 0);
  return { eval: usec('eval'), evalsha: usec('evalsha') };
}

const perJob = { a: [] as number[], b: [] as number[] };
for (let round = 0; round < rounds; round++) {
  for (let queued = 0; queued < total; queued += 1000) {
    const n = Math.min(1000, total - queued);
    await bench.executions.executeBatch(Array.from({ length: n }, () => ({ procedure: 'noop' })));
  }
  const before = await scriptTimes();
  const jobs = { a: 0, b: 0 };
  let held: { id: string; token: string; made: number }[] = [];
  let tokens = 0;
  for (let call = 0; ; call++) {
    const takeTokens = Array.from({ length: perCall }, () => `ab:${tokens++}`);
    // The ARGV of finishAndTake-9.lua (its header): retention 1,000 and a day, as sprocd's defaults.
    const args: (string | number)[] = [bull.job(''), Date.now(), perCall, 30_000, 'ab', 1000, 86_400, 1000];
    args.push(held.length, sideKeys);
    for (const h of held) {
      args.push(h.id, h.token, 'null', h.made);
    }
    args.push(...takeTokens);
    const side = call % 2 === 0 ? 'a' : 'b';
    const reply = (
      side === 'a'
        ? await redis.eval(textA, keys.length, ...keys, ...args)
        : await redis.evalsha(shaB, keys.length, ...keys, ...args)
    ) as [number[], (string[] | string)[]];
    const [codes, flat] = reply;
    if (codes.some((c) => c !== 0)) {
      throw new Error(`a filing failed: codes ${codes.join(',')}`);
    }
    jobs[side] += codes.length + flat.length / 2;
    held = [];
    for (let i = 0; i < flat.length; i += 2) {
      held.push({ id: String(flat[i + 1]), token: takeTokens[i / 2] as string, made: 0 });
    }
    if (held.length === 0) {
      break;
    }
  }
  const after = await scriptTimes();
  // A job is one filing and one take: twice the work counted per call, halved back.
  perJob.a.push((2 * (after.eval - before.eval)) / jobs.a);
  perJob.b.push((2 * (after.evalsha - before.evalsha)) / jobs.b);
}

const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' ');
process.stdout.write(`A ${fileA}: ${median(perJob.a).toFixed(2)} µs/job (rounds: ${fmt(perJob.a)})\n`);
process.stdout.write(`B ${fileB}: ${median(perJob.b).toFixed(2)} µs/job (rounds: ${fmt(perJob.b)})\n`);
process.stdout.write(
  `B/A per round: ${perJob.b.map((b, i) => (b / (perJob.a[i] as number)).toFixed(3)).join(' ')}\n`,
);

await bench.stop();
redis.disconnect();
await server.stop();
fs.rmSync(dir, { recursive: true, force: true });
