--[[
  KILL WORKER: drops the worker's pending messages. A worker running a message (or holding one its
  dead owner did not finish) is marked killed and ends when that message is done; an idle one ends
  now, and its owner is told on the channel (it drops what it kept for the worker).

  Input:
    KEYS[1] the worker's owner key
    KEYS[2] its state hash
    KEYS[3] its mailbox
    KEYS[4] the workers index
    ARGV[1] the worker's name, ARGV[2] the nudge channel
  Output:
    {0}: no such worker; {1, dropped}: it ends after its current message; {2, dropped}: it ended
]]
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {0}
end
local dropped = redis.call('LLEN', KEYS[3])
redis.call('DEL', KEYS[3])
if redis.call('HEXISTS', KEYS[2], 'cur') == 1 then
  redis.call('HSET', KEYS[2], 'killed', '1')
  return {1, dropped}
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return {2, dropped}
