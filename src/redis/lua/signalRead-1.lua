--[[
  Reads a signal for an open or a wait; a signal not yet triggered lives `ttl` ms more (a wait or an
  open counts as use). A triggered one keeps its shorter expiry.

  Input:
    KEYS[1] the signal's hash
    ARGV[1] ttl ms while unused
  Output:
    { -1 } when there is no such signal (never made, or expired);
    { 1 or 0 (signaled), result JSON ('' when not signaled), description }
]]
local v = redis.call('HMGET', KEYS[1], 's', 'r', 'd')
if not v[1] then
  return { -1 }
end
if v[1] == '1' then
  return { 1, v[2] or 'null', v[3] or '' }
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return { 0, '', v[3] or '' }
