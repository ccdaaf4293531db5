--[[
  SPROCD_STORAGE_SLOTS as the deployment has it: stored by the first node that starts with K > 1 on a
  storage without entries. Absent means 1, the layout from before the setting (a node with K = 1
  writes nothing, so the keys stay exactly as they were).

  Input:
    KEYS[1] the stored K, KEYS[2] the entries hash of K = 1
    ARGV[1] the K this node was started with
  Output:
    the deployment's K (as a string); the caller refuses to start when it is not its own.
]]
local stored = redis.call('GET', KEYS[1])
if stored then
  return stored
end
if ARGV[1] == '1' or redis.call('HLEN', KEYS[2]) > 0 then
  return '1'
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
