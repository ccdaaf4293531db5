--[[
  The state of each execution a page of an index lists (src/procedures/indexed-pages.ts), read from
  BullMQ's sets without reading the jobs: completed, failed, delayed, prioritized (waiting), active,
  else waiting. An execution whose job is gone (retention removed it) is taken out of the index read.

  Input:
    KEYS[1] completed, KEYS[2] failed, KEYS[3] delayed, KEYS[4] prioritized, KEYS[5] active,
    KEYS[6] the index read, KEYS[7] an index each execution must also be in (or KEYS[6] again),
    then the job hash of each execution
    ARGV[1] 1 when KEYS[7] must hold each execution else 0, then the job id of each execution
  Output:
    for each execution: state ("gone", "other" when KEYS[7] does not hold it, "completed", "failed",
    "delayed", "waiting", "active"), then its failedReason when failed ("" otherwise)
]]
local rcall = redis.call
local out = {}
local gone = {}
for i = 8, #KEYS do
  local jobId = ARGV[i - 6]
  local state, reason = 'waiting', ''
  if rcall('EXISTS', KEYS[i]) == 0 then
    state = 'gone'
    gone[#gone + 1] = jobId
  elseif ARGV[1] == '1' and not rcall('ZSCORE', KEYS[7], jobId) then
    state = 'other'
  elseif rcall('ZSCORE', KEYS[1], jobId) then
    state = 'completed'
  elseif rcall('ZSCORE', KEYS[2], jobId) then
    state = 'failed'
    reason = rcall('HGET', KEYS[i], 'failedReason') or ''
  elseif rcall('ZSCORE', KEYS[3], jobId) then
    state = 'delayed'
  elseif rcall('ZSCORE', KEYS[4], jobId) then
    state = 'waiting'
  elseif rcall('LPOS', KEYS[5], jobId) then
    state = 'active'
  end
  out[#out + 1] = state
  out[#out + 1] = reason
end
if #gone > 0 then
  rcall('ZREM', KEYS[6], unpack(gone))
end
return out
