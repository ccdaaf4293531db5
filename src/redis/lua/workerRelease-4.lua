--[[
  The owner of a worker gives it back (its node stops): the owner key goes, and a worker with
  something to run is made due and nudged, so another node takes it at once instead of after the
  lease; an idle one waits, unowned, for its next call.

  Input:
    KEYS[1] the worker's owner key
    KEYS[2] its state hash
    KEYS[3] its mailbox
    KEYS[4] the workers index
    ARGV[1] the worker's name, ARGV[2] the owner's token, ARGV[3] the nudge channel
  Output:
    1 when released, 0 when the token did not own it
]]
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 1
end
if redis.call('HEXISTS', KEYS[2], 'cur') == 1 or redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('HDEL', KEYS[2], 'idle')
  redis.call('ZADD', KEYS[4], 0, ARGV[1])
  redis.call('PUBLISH', ARGV[3], ARGV[1])
else
  redis.call('HSET', KEYS[2], 'idle', '1')
  redis.call('ZADD', KEYS[4], '+inf', ARGV[1])
end
return 1
