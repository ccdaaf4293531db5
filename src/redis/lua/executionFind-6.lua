--[[
  One execution by its job id, with its state, in one atomic step that never walks the wait list:
  completed, failed, delayed and prioritized are sorted sets (ZSCORE), the active list holds at most
  the workers' concurrency (LPOS there is cheap), and a job in none of them is waiting. BullMQ's own
  getJobState looks for a waiting job with LPOS over the whole wait list (15-30 ms of blocked Redis
  at a million waiting).

  Input:
    KEYS[1] completed, KEYS[2] failed, KEYS[3] delayed, KEYS[4] prioritized, KEYS[5] active,
    KEYS[6] job hash
    ARGV[1] job id
  Output:
    {} when the job is gone; else { state, field, value, field, value, ... } (HGETALL of the job),
    state one of "completed", "failed", "delayed", "waiting", "active"
]]
local rcall = redis.call
local jobId = ARGV[1]
local fields = rcall("HGETALL", KEYS[6])
if #fields == 0 then
  return {}
end
local state = "waiting"
if rcall("ZSCORE", KEYS[1], jobId) then
  state = "completed"
elseif rcall("ZSCORE", KEYS[2], jobId) then
  state = "failed"
elseif rcall("ZSCORE", KEYS[3], jobId) then
  state = "delayed"
elseif rcall("ZSCORE", KEYS[4], jobId) then
  state = "waiting"
elseif rcall("LPOS", KEYS[5], jobId) then
  state = "active"
end
table.insert(fields, 1, state)
return fields
