--[[
  PAUSE PROCESS: marks an unfinished execution paused in its job hash (field ARGV[3]), atomically
  with parking it when it has not started, so no worker can take it in between. A waiting one (in
  `wait`, `paused` or `prioritized`) and a delayed one (a delayed start, a retry's back-off) move to
  the delayed set at the parking score, the farthest time BullMQ's scores hold: no worker takes it
  before a resume moves it back. The field holds "queue" for one that was waiting, the due time (ms)
  of a delayed one (a resume puts it back there), "run" for one that has started (the caller tells its
  node). Every BullMQ name it relies on is in redis/bullmq-internals.ts, checked by its contract test.

  Input:
    KEYS[1] job hash, KEYS[2] wait, KEYS[3] paused, KEYS[4] delayed, KEYS[5] prioritized
    ARGV[1] job id, ARGV[2] the parking score, ARGV[3] the pause field, ARGV[4] the delayed-score factor
  Output:
    "missing" | "finished" | "already" (paused before: nothing changes) | "parked" | "active"
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
if rcall("HEXISTS", jobKey, ARGV[3]) == 1 then
  return "already"
end
local parkScore = tonumber(ARGV[2])
local waiting = rcall("LREM", KEYS[2], 0, jobId) + rcall("LREM", KEYS[3], 0, jobId)
  + rcall("ZREM", KEYS[5], jobId)
if waiting > 0 then
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
rcall("HSET", jobKey, ARGV[3], "run")
return "active"
