--[[
  Triggers a signal: the first trigger sets its result, shortens its life and publishes the wake-up;
  a later one changes nothing.

  Input:
    KEYS[1] the signal's hash
    ARGV[1] the signal channel, ARGV[2] the signal id, ARGV[3] result JSON,
    ARGV[4] ttl ms once triggered
  Output:
    { 1, result } when this call triggered it; { 0, the first trigger's result } when it already was;
    { -1, '' } when there is no such signal
]]
local v = redis.call('HMGET', KEYS[1], 's', 'r')
if not v[1] then
  return { -1, '' }
end
if v[1] == '1' then
  return { 0, v[2] or 'null' }
end
redis.call('HSET', KEYS[1], 's', '1', 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n' .. ARGV[3])
return { 1, ARGV[3] }
