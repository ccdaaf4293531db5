--[[
  Raises the execution counter to a number another execution was found holding, never lowering it:
  the counter's half of executionIndex-n.lua for a queue shard, whose keys live in another slot than
  the counter (SPROCD_QUEUE_SHARDS > 1 on a Redis Cluster).

  Input:
    KEYS[1] the execution counter
    ARGV[1] the number found held
  Output:
    1 when the counter was raised, else 0
]]
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
