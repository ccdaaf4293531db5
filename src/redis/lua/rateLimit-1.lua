--[[
  Counts one request of a caller against its rate limit: fixed windows of ARGV[1] ms, one counter per
  caller shared by every node (src/api/limits.ts). The first request of a window starts it.

  Input:
    KEYS[1] the caller's counter
    ARGV[1] the window (ms)
  Output:
    { requests in the current window, this one included; ms until the window ends }
]]
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
