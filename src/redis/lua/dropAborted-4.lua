--[[
  A worker just popped a job from the wait list that holds a finished execution: one aborted while
  waiting (abortWaiting-8.lua left it in the list), or whose job BullMQ's retention removed since
  (BullMQ's pop then wrote a hash holding only its own fields). Undoes the pop without running it:
  out of the active list and the stalled set, the lock deleted, and the fields the pop wrote put back
  as they were (the start count, processedOn and processedBy), or the hash the pop made deleted.

  Input:
    KEYS[1] active, KEYS[2] stalled, KEYS[3] dropped set, KEYS[4] job hash
    ARGV[1] job id, ARGV[2] the field keeping processedOn, ARGV[3] the field keeping processedBy
  Output:
    1 when dropped; 0 when the job holds an unfinished execution (run it)
]]
local rcall = redis.call
local jobKey = KEYS[4]
local jobId = ARGV[1]
local listed = rcall("SREM", KEYS[3], jobId) == 1
local hasData = rcall("HEXISTS", jobKey, "data") == 1
if not listed and hasData and rcall("HEXISTS", jobKey, "finishedOn") == 0 then
  return 0
end
rcall("LREM", KEYS[1], 1, jobId)
rcall("SREM", KEYS[2], jobId)
rcall("DEL", jobKey .. ":lock")
if not hasData then
  rcall("DEL", jobKey)
  return 1
end
rcall("HINCRBY", jobKey, "ats", -1)
local processedOn = rcall("HGET", jobKey, ARGV[2])
if processedOn then
  rcall("HSET", jobKey, "processedOn", processedOn)
else
  rcall("HDEL", jobKey, "processedOn")
end
local processedBy = rcall("HGET", jobKey, ARGV[3])
if processedBy then
  rcall("HSET", jobKey, "pb", processedBy)
else
  rcall("HDEL", jobKey, "pb")
end
rcall("HDEL", jobKey, ARGV[2], ARGV[3])
return 1
