--[[
  The pause field of each execution (Process activity reads a page of them in one call).

  Input:
    KEYS: the job hash of each execution
    ARGV[1] the pause field (bullmq-internals.ts PAUSE_FIELD)
  Output:
    for each execution: its pause field, "" when not paused (or gone)
]]
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call("HGET", KEYS[i], ARGV[1]) or ""
end
return out
