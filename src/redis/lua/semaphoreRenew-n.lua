--[[
  Renews the lease of each semaphore a node's executions hold, only while it still holds the
  holder's value (a semaphore lost meanwhile is not taken back).

  Input:
    KEYS[i] a held semaphore
    ARGV[1] lease ms, ARGV[i + 1] the value KEYS[i] must hold
  Output:
    the positions (1-based) of the semaphores no longer held
]]
local lost = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    lost[#lost + 1] = i
  end
end
return lost
