--[[
  Aborts an execution that has not started: takes it out of whichever list holds it and files it
  as failed with the ABORTED reason, atomically, so that no worker can pick it up in between.
  An execution that is active gets a flag instead and the caller signals the node running it.

  KEYS: 1 job hash, 2 wait, 3 paused, 4 delayed, 5 prioritized, 6 failed, 7 events
  ARGV: 1 job id, 2 failedReason, 3 now (ms), 4 deduplication key prefix
  Returns: "missing" | "finished" | "aborted" | "active"
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
  rcall("XADD", KEYS[7], "MAXLEN", "~", 10000, "*", "event", "failed", "jobId", jobId,
    "failedReason", ARGV[2], "prev", "waiting")
  return "aborted"
end
rcall("HSET", jobKey, "sprocdAbort", "1")
return "active"
