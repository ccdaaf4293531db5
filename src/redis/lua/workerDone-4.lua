--[[
  The owner of a worker finished its current message: counts it and, in the same round trip, takes
  the next one. A worker killed while the message ran ends here: its keys go (messages queued after
  the kill make a new worker of that name, which any node may take).

  Input:
    KEYS[1] the worker's owner key
    KEYS[2] its state hash
    KEYS[3] its mailbox
    KEYS[4] the workers index
    ARGV[1] the owner's token, ARGV[2] now (ms), ARGV[3] 1: take the next message, ARGV[4] 1: it
    failed, ARGV[5] the worker's name, ARGV[6] the nudge channel
  Output:
    {-1}: the token no longer owns the worker (nothing counted); {-2}: the worker ended (killed);
    {0}: nothing taken; {1, message JSON}: run it
]]
--- @include "includes/workerTake"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
redis.call('HDEL', KEYS[2], 'cur', 'att', 'at')
redis.call('HINCRBY', KEYS[2], 'n', 1)
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[2], 'f', 1)
end
if redis.call('HGET', KEYS[2], 'killed') == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
  if redis.call('LLEN', KEYS[3]) > 0 then
    redis.call('HSET', KEYS[2], 'created', ARGV[2], 'n', 0, 'f', 0)
    redis.call('ZADD', KEYS[4], 0, ARGV[5])
    redis.call('PUBLISH', ARGV[6], ARGV[5])
  else
    redis.call('ZREM', KEYS[4], ARGV[5])
  end
  return {-2}
end
if ARGV[3] ~= '1' then
  return {0}
end
return takeNext(ARGV[2])
