--[[
  A node's periodic renewal: marks the node alive for one lease, and extends the lease of every lock
  it holds, when it still holds it (same fencing token).

  Input:
    KEYS[1] the node's alive key
    KEYS[1+i] lock i (i = 1..n)
    ARGV[1] lease ms
    ARGV[1+i] the value lock i must still hold
  Output:
    the indexes i (1-based) of the locks that were no longer held.
]]
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local lost = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    lost[#lost + 1] = i - 1
  end
end
return lost
