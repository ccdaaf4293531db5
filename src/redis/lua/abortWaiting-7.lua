--[[
  Aborts an execution that has not started: takes it out of whichever list holds it and files it
  as failed with the ABORTED reason, atomically, so that no worker can pick it up in between.
  An execution that is active gets a flag instead and the caller signals the node running it.
  It writes BullMQ's own structures the way BullMQ's moveToFinished does for a failure; every
  name it relies on is listed in redis/bullmq-internals.ts and checked by its contract test.

  Input:
    KEYS[1] job hash, KEYS[2] wait, KEYS[3] paused, KEYS[4] delayed, KEYS[5] prioritized,
    KEYS[6] failed, KEYS[7] events stream
    ARGV[1] job id, ARGV[2] failedReason, ARGV[3] now (ms), ARGV[4] deduplication key prefix,
    ARGV[5] the events stream's length (the queue's streams.events.maxLen)
  Output:
    "missing" | "finished" | "aborted" | "active"
]]
local rcall = redis.call
local jobKey = KEYS[1]
local jobId = ARGV[1]
if rcall("EXISTS", jobKey) == 0 then
  return "missing"
end
if rcall("HEXISTS", jobKey, "finishedOn") == 1 then
  return "finished"
end
local removed = rcall("LREM", KEYS[2], 0, jobId) + rcall("LREM", KEYS[3], 0, jobId)
  + rcall("ZREM", KEYS[4], jobId) + rcall("ZREM", KEYS[5], jobId)
if removed > 0 then
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
end
rcall("HSET", jobKey, "sprocdAbort", "1")
return "active"
