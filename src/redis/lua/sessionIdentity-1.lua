--[[
  Creates the session identity once: the first node to run this on an empty Redis sets it, every
  later call (any node, any restart) reads it. Atomic, so nodes starting together agree.

  Input:
    KEYS[1] session identity hash
    ARGV[1] a fresh UUID, ARGV[2] this node's machine name
  Output:
    { id, creation time in ms (Redis clock), created (1 when this call made it, else 0) }
]]
local id = redis.call('HGET', KEYS[1], 'id')
if id then
  return { id, redis.call('HGET', KEYS[1], 'createdAtMs') or '0', 0 }
end
local t = redis.call('TIME')
local ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'createdAtMs', ms, 'createdBy', ARGV[2])
return { ARGV[1], ms, 1 }
