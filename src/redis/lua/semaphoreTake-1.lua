--[[
  Semaphore: takes the semaphore for a holder when nobody holds it, with a lease.

  Input:
    KEYS[1] the semaphore
    ARGV[1] the holder's value, ARGV[2] lease ms
  Output:
    0 when taken; else the holder's remaining lease in ms (at least 1)
]]
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 1 then
  return 1
end
return pttl
