--[[
  Adds a node's requests of a caller to its rate-limit counter: fixed windows of ARGV[1] ms, one
  counter per caller shared by every node, which add what they admitted in batches and ask here for
  each request near the limit (src/api/rate-counts.ts). The first requests of a window start it.

  Input:
    KEYS[1] the caller's counter
    ARGV[1] the window (ms)
    ARGV[2] requests to add (1 or more)
  Output:
    { requests in the current window, these included; ms until the window ends }
]]
local added = tonumber(ARGV[2])
local count = redis.call('INCRBY', KEYS[1], added)
local ttl = redis.call('PTTL', KEYS[1])
if count == added or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
