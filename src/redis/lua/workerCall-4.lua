--[[
  CALL WORKER: queues a message for a worker, creating the worker on its first call. An idle worker
  (its owner has nothing to run, or nobody owns it) is nudged once on the channel; one nobody owns
  is also made due in the index, so a node's scan takes it even if the nudge is missed.

  Input:
    KEYS[1] the worker's state hash
    KEYS[2] its mailbox
    KEYS[3] the workers index
    KEYS[4] its owner key
    ARGV[1] the worker's name, ARGV[2] the message JSON, ARGV[3] now (ms), ARGV[4] the nudge channel
  Output:
    the number of pending messages, this one included
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'created', ARGV[3], 'n', 0, 'f', 0, 'idle', '1')
end
local pending = redis.call('RPUSH', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[1], 'idle') == '1' then
  redis.call('HDEL', KEYS[1], 'idle')
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('ZADD', KEYS[3], 0, ARGV[1])
  end
  redis.call('PUBLISH', ARGV[4], ARGV[1])
end
return pending
