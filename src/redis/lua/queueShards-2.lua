--[[
  The deployment's queue shard count (SPROCD_QUEUE_SHARDS), stored at its first start. A deployment
  that has taken execution numbers but stored no count was started before the setting existed: its
  executions are in the one queue under {prefix}, so its count is 1 whatever this node was given.

  Input:
    KEYS[1] the stored count, KEYS[2] the execution counter
    ARGV[1] the count this node was started with
  Output:
    the stored count (a number), which the caller compares with its own
]]
local stored = redis.call('GET', KEYS[1])
if not stored then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    stored = '1'
  else
    stored = ARGV[1]
  end
  redis.call('SET', KEYS[1], stored)
end
return tonumber(stored)
