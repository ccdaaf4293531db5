--[[
  Aborts an execution that has not started, atomically, so that no worker can start it in between:
  it is filed as failed with the ABORTED reason (shown `aborted` at once, its unique name freed). One
  in the delayed or prioritized set (or BullMQ's legacy paused list) is taken out of it. One in the
  wait list is left there: finding it there (LPOS, LREM) walks the whole list, 15-30 ms of blocked
  Redis at a million waiting; it goes in the dropped set instead, and the worker that pops it drops
  it without running it (dropPopped-6.lua). A job in no other set and not active is in the wait list.
  An execution that is active gets a flag instead and the caller signals the node running it.
  It writes BullMQ's own structures the way BullMQ's moveToFinished does for a failure; every
  name it relies on is listed in redis/bullmq-internals.ts and checked by its contract test.

  Input:
    KEYS[1] job hash, KEYS[2] active, KEYS[3] paused, KEYS[4] delayed, KEYS[5] prioritized,
    KEYS[6] failed, KEYS[7] events stream, KEYS[8] dropped set
    ARGV[1] job id, ARGV[2] failedReason, ARGV[3] now (ms), ARGV[4] deduplication key prefix,
    ARGV[5] the events stream's length (the queue's streams.events.maxLen),
    ARGV[6] the field keeping processedOn, ARGV[7] the field keeping processedBy
  Output:
    "missing" | "finished" | "aborted" | "active"
]]
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
-- The active list holds at most the workers' concurrency: LPOS there is cheap.
if rcall("LPOS", KEYS[2], jobId) then
  rcall("HSET", jobKey, "sprocdAbort", "1")
  return "active"
end
local removed = rcall("ZREM", KEYS[4], jobId) + rcall("ZREM", KEYS[5], jobId)
  + rcall("LREM", KEYS[3], 0, jobId)
if removed == 0 then
  rcall("SADD", KEYS[8], jobId)
  keepPopFields(jobKey, ARGV[6], ARGV[7])
end
rcall("HSET", jobKey, "failedReason", ARGV[2], "finishedOn", ARGV[3], "sprocdAbort", "1")
rcall("ZADD", KEYS[6], ARGV[3], jobId)
local deid = rcall("HGET", jobKey, "deid")
if deid then
  local dedupKey = ARGV[4] .. deid
  if rcall("GET", dedupKey) == jobId then
    rcall("DEL", dedupKey)
  end
end
rcall("XADD", KEYS[7], "MAXLEN", "~", tonumber(ARGV[5]), "*", "event", "failed", "jobId", jobId,
  "failedReason", ARGV[2], "prev", "waiting")
return "aborted"
