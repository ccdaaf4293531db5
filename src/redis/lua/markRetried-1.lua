--[[
  Notes on the job of a failed or aborted execution which execution retries it, only while that job
  exists: a job hash must never be made by this one field (BullMQ would take it for a job).

  Input:
    KEYS[1] the job hash of the retried execution
    ARGV[1] the field (bullmq-internals.ts RETRIED_BY_FIELD), ARGV[2] the number of the retry
  Output:
    1 when noted, 0 when the job is gone
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
