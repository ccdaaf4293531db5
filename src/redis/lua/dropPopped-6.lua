--[[
  A worker just popped a job from the wait list whose hash says it is not to run as it is: an
  execution aborted while waiting (abortWaiting-8.lua left it in the list), one paused while waiting
  (pauseExecution-5.lua left it in the list, marked), or one whose job BullMQ's retention removed
  since (BullMQ's pop then wrote a hash holding only its own fields). Undoes the pop: out of the
  active list and the stalled set, the lock deleted, and the fields the pop wrote put back as they
  were (the start count, processedOn and processedBy), or the hash the pop made deleted. A paused one
  is then parked in the delayed set, as a pause parks a delayed one: its pause field goes from "wait"
  to "queue", so RESUME PROCESS sends it back to the queue, and a `delayed` event follows the pop's
  `active` one for those who watch the job-event stream.
  A paused one resumed between the pop and this script (resumeWaiting-1.lua took its field and mark
  away) is left to run.

  Input:
    KEYS[1] active, KEYS[2] stalled, KEYS[3] dropped set, KEYS[4] job hash, KEYS[5] delayed,
    KEYS[6] events stream
    ARGV[1] job id, ARGV[2] the field keeping processedOn, ARGV[3] the field keeping processedBy,
    ARGV[4] the pause field, ARGV[5] the pause mark's JSON member, ARGV[6] the parking score,
    ARGV[7] the events stream's length (the queue's streams.events.maxLen)
  Output:
    0 when the job holds an unfinished execution that is not paused (run it); 1 when dropped;
    2 when parked
]]
--- @include "includes/pauseMark"
--- @include "includes/popFields"
local rcall = redis.call
local jobKey = KEYS[4]
local jobId = ARGV[1]
local listed = rcall("SREM", KEYS[3], jobId) == 1
local hasData = rcall("HEXISTS", jobKey, "data") == 1
local finished = rcall("HEXISTS", jobKey, "finishedOn") == 1
local park = hasData and not finished and rcall("HGET", jobKey, ARGV[4]) == "wait"
unmarkOpts(jobKey, ARGV[5])
if not listed and hasData and not finished and not park then
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
restorePopFields(jobKey, ARGV[2], ARGV[3])
if not park then
  return 1
end
rcall("ZADD", KEYS[5], tonumber(ARGV[6]), jobId)
rcall("HSET", jobKey, ARGV[4], "queue")
rcall("XADD", KEYS[6], "MAXLEN", "~", tonumber(ARGV[7]), "*", "event", "delayed", "jobId", jobId,
  "prev", "active")
return 2
