--[[
  Shared by the scripts that leave an execution in BullMQ's wait list for the worker that pops it
  (each pulls it in with an @include line; see redis/scripts.ts).

  BullMQ's pop overwrites `processedOn` and `pb` (processedBy) in the job hash; a job the worker then
  does not run (aborted or paused while it waited) must show them as they were. keepPopFields copies
  them aside, into the fields `poField` and `pbField`, before the pop (abortWaiting-8.lua,
  pauseExecution-5.lua); restorePopFields puts them back after it (dropPopped-6.lua), removing what the
  pop wrote when there was nothing before, and drops the copies.
]]
local function keepPopFields(jobKey, poField, pbField)
  local processedOn = redis.call("HGET", jobKey, "processedOn")
  if processedOn then
    redis.call("HSET", jobKey, poField, processedOn)
  end
  local processedBy = redis.call("HGET", jobKey, "pb")
  if processedBy then
    redis.call("HSET", jobKey, pbField, processedBy)
  end
end

local function restorePopFields(jobKey, poField, pbField)
  local processedOn = redis.call("HGET", jobKey, poField)
  if processedOn then
    redis.call("HSET", jobKey, "processedOn", processedOn)
  else
    redis.call("HDEL", jobKey, "processedOn")
  end
  local processedBy = redis.call("HGET", jobKey, pbField)
  if processedBy then
    redis.call("HSET", jobKey, "pb", processedBy)
  else
    redis.call("HDEL", jobKey, "pb")
  end
  redis.call("HDEL", jobKey, poField, pbField)
end
