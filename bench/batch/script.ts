/**
 * One Lua script, built at load time from BullMQ's own `moveToFinished-14.lua` and `moveToActive-11.lua`,
 * that files up to F finished jobs and takes up to N waiting ones in a single EVALSHA (the batched
 * fetch-and-complete prototype of docs/BENCHMARKS.md). Each script's body is wrapped, unchanged, in
 * a Lua function of (KEYS, ARGV), called once per job; the `--- @include` files they share are
 * expanded once, above both, as BullMQ's build expands them (depth first, each file once). So the ~45
 * local functions are defined once per call rather than once per job, and the data layout, events and
 * retention are BullMQ's exactly: the bodies are BullMQ's code.
 *
 * KEYS: 1 wait, 2 active, 3 prioritized, 4 events, 5 stalled, 6 limiter, 7 delayed, 8 paused, 9 meta,
 * 10 pc, 11 marker, 12 completed, 13 failed, 14 metrics:completed, 15 metrics:failed.
 * ARGV: 1 key prefix, 2 timestamp, 3 F, 4 N, 5 moveToActive's packed opts (token, lockDuration,
 * limiter, name), 6 M, 7..6+M packed moveToFinished opts (BullMQ's, shared by the jobs that have the
 * same), then per finished job: jobId, target ("completed" | "failed"), value (JSON return value or
 * failed reason), index of its opts (1..M).
 * Reply: { codes (moveToFinished's per finished job: 0 or BullMQ's negative error codes),
 * jobs (flat: HGETALL, jobId, ...), tail (moveToActive's {rateLimitDelay, delayUntil} of the take
 * that found nothing, or {} when all N were taken) }.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const INCLUDE = /^\s*---\s*@include\s+"([^"]+)"\s*$/;

/** BullMQ's `commands` directory (its Lua sources, as shipped in the package). */
export function bullmqCommandsDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('bullmq/package.json')), 'dist', 'esm', 'commands');
}

/**
 * Expands `file`'s includes into `library` (each file once, its own includes first, as BullMQ does:
 * a path is relative to the including file) and answers the file's other lines.
 */
function split(file: string, seen: Set<string>, library: string[]): string[] {
  const own: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = INCLUDE.exec(line);
    if (!m) {
      own.push(line);
      continue;
    }
    const target = path.resolve(path.dirname(file), `${m[1]!}.lua`);
    if (!seen.has(target)) {
      seen.add(target);
      library.push(...split(target, seen, library));
    }
  }
  return own;
}

/** The batch script's source. */
export function buildBatchScript(dir = bullmqCommandsDir()): string {
  const seen = new Set<string>();
  const library: string[] = [];
  const finishBody = split(path.join(dir, 'moveToFinished-14.lua'), seen, library);
  const activeBody = split(path.join(dir, 'moveToActive-11.lua'), seen, library);
  for (const body of [finishBody, activeBody]) {
    // The bodies read only KEYS, ARGV, rcall and the library's functions, and the includes read none
    // of a body's locals (a reference would be to a nonexistent global: Redis fails the call, which
    // the bench's correctness pass would show). A body defining functions would cost them per job.
    if (body.some((l) => /^\s*local\s+function\s/.test(l))) {
      throw new Error(
        'a BullMQ script body defines a function of its own: the wrapper would redefine it per job',
      );
    }
  }
  return [
    'local rcall = redis.call',
    ...library,
    'local function finishOne(KEYS, ARGV)',
    ...finishBody,
    'end',
    'local function activateOne(KEYS, ARGV)',
    ...activeBody,
    'end',
    DRIVER,
  ].join('\n');
}

// The loop around the two bodies: per finished job the 14 KEYS and 9 ARGV BullMQ's
// Scripts.moveToFinishedArgs builds (fetch next "0": the takes are activateOne's), then N takes with
// moveToActive's 11 KEYS and 3 ARGV (the same tables each time: the body does not write them).
const DRIVER = `
local prefix, timestamp = ARGV[1], ARGV[2]
local nFinish, nTake, nOpts = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local codes = {}
local base = 6 + nOpts
for i = 1, nFinish do
  local o = base + (i - 1) * 4
  local jobId, target = ARGV[o + 1], ARGV[o + 2]
  local done = target == "completed"
  local fk = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
    done and KEYS[12] or KEYS[13], prefix .. jobId, done and KEYS[14] or KEYS[15], KEYS[11]}
  local fa = {jobId, timestamp, done and "returnvalue" or "failedReason", ARGV[o + 3], target, "0",
    prefix, ARGV[6 + tonumber(ARGV[o + 4])]}
  codes[i] = finishOne(fk, fa)
end
local ak = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]}
local aa = {prefix, timestamp, ARGV[5]}
local jobs = {}
local tail = {}
for i = 1, nTake do
  local r = activateOne(ak, aa)
  if r[1] == 0 then
    tail = {r[3], r[4]}
    break
  end
  jobs[#jobs + 1] = r[1]
  jobs[#jobs + 1] = r[2]
end
return {codes, jobs, tail}
`;

export const BATCH_KEYS = 15;
