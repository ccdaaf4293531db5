--[[
  PAUSE PROCESS: marks an unfinished execution paused in its job hash (field ARGV[3]), atomically
  with holding it when it has not started, so no worker can take it in between. Every step is O(1)
  or O(log N) in the size of the queue: it never walks the wait list.
  - Active (LPOS in the active list, which holds at most the workers' concurrency): the field holds
    "run" and the caller tells its node.
  - Prioritized, or delayed (a delayed start, a retry's back-off), or in BullMQ's legacy paused list:
    parked in the delayed set at the parking score, the farthest time BullMQ's scores hold, so no
    worker takes it before a resume moves it back. The field holds "queue" for one that was waiting,
    else the due time (ms) of the delayed one (a resume puts it back there).
  - In none of those, so in the wait list: it stays there, in its place. The field holds "wait" and
    its options carry the pause mark (includes/pauseMark.lua); the worker that pops it parks it
    instead of running it (dropPopped-6.lua), and a resume before that only takes the mark away
    (resumeWaiting-1.lua). Its processedOn and processedBy are kept aside, as an abort keeps them, for
    that worker to put back.
  Every BullMQ name it relies on is in redis/bullmq-internals.ts, checked by its contract test.

  Input:
    KEYS[1] job hash, KEYS[2] active, KEYS[3] paused, KEYS[4] delayed, KEYS[5] prioritized
    ARGV[1] job id, ARGV[2] the parking score, ARGV[3] the pause field, ARGV[4] the delayed-score factor,
    ARGV[5] the pause mark's JSON member, ARGV[6] the field keeping processedOn,
    ARGV[7] the field keeping processedBy
  Output:
    "missing" | "finished" | "already" (paused before: nothing changes) | "parked" | "marked" | "active"
]]
--- @include "includes/pauseMark"
--- @include "includes/popFields"
local rcall = redis.call
local jobKey = KEYS[1]
local jobId = ARGV[1]
if rcall("EXISTS", jobKey) == 0 then
  return "missing"
end
if rcall("HEXISTS", jobKey, "finishedOn") == 1 then
  return "finished"
end
if rcall("HEXISTS", jobKey, ARGV[3]) == 1 then
  return "already"
end
if rcall("LPOS", KEYS[2], jobId) then
  rcall("HSET", jobKey, ARGV[3], "run")
  return "active"
end
local parkScore = tonumber(ARGV[2])
-- The legacy paused list is empty under BullMQ 6 (it flags a paused queue in `meta` instead).
if rcall("ZREM", KEYS[5], jobId) + rcall("LREM", KEYS[3], 0, jobId) > 0 then
  rcall("ZADD", KEYS[4], parkScore, jobId)
  rcall("HSET", jobKey, ARGV[3], "queue")
  return "parked"
end
local score = rcall("ZSCORE", KEYS[4], jobId)
if score then
  rcall("ZADD", KEYS[4], parkScore, jobId)
  rcall("HSET", jobKey, ARGV[3], tostring(math.floor(tonumber(score) / tonumber(ARGV[4]))))
  return "parked"
end
markOpts(jobKey, ARGV[5])
rcall("HSET", jobKey, ARGV[3], "wait")
keepPopFields(jobKey, ARGV[6], ARGV[7])
return "marked"
