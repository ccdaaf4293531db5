--[[
  A node takes a worker nobody owns that has something to run (a current message its dead owner
  left, or pending messages): the owner key with its token and a lease, and the index scored with
  the lease's end. A worker owned by someone else is scored with that owner's lease end; an idle one
  nobody owns is scored +inf (a call makes it due again); a worker that ended leaves the index.

  Input:
    KEYS[1] the worker's owner key
    KEYS[2] its state hash
    KEYS[3] its mailbox
    KEYS[4] the workers index
    ARGV[1] the worker's name, ARGV[2] the token, ARGV[3] lease ms, ARGV[4] now (ms)
  Output:
    1 when taken, else 0
]]
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + pttl, ARGV[1])
  return 0
end
if redis.call('HEXISTS', KEYS[2], 'cur') == 0 and redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[2], 'idle', '1')
  redis.call('ZADD', KEYS[4], '+inf', ARGV[1])
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('HDEL', KEYS[2], 'idle')
redis.call('ZADD', KEYS[4], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
return 1
