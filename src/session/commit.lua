-- Ends a storage.use: checks that every lock is still held with its fencing token, then writes all
-- changed entries at once and releases every lock, granting each to its next waiter. When any lock
-- was lost (its lease ran out), nothing is written; the locks still held are released all the same.
-- KEYS[1] fence counter, KEYS[2] data hash, then per entry i: KEYS[1+2i] its lock, KEYS[2+2i] its queue.
-- ARGV[1] storage prefix, ARGV[2] lease ms, ARGV[3] inbox ttl ms, ARGV[4] the committing node, then 4
-- per entry i, from ARGV[5+4(i-1)]: name, lock value, op ("s" set to the JSON that follows, "d"
-- delete, "k" keep), JSON.
-- Returns { ok (1 or 0), number of lost locks, lostName..., grant message for the committing node's
-- own waiters... }: a lock passed to another waiter of the same node travels back in the reply.
local prefix, lease, inboxTtl, selfNode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local FIRST = 5
local n = (#KEYS - 2) / 2
local lost = {}
local owned = {}
for i = 1, n do
  local base = FIRST + (i - 1) * 4
  owned[i] = redis.call('GET', KEYS[1 + 2 * i]) == ARGV[base + 1]
  if not owned[i] then
    lost[#lost + 1] = ARGV[base]
  end
end
if #lost == 0 then
  for i = 1, n do
    local base = FIRST + (i - 1) * 4
    local op = ARGV[base + 2]
    if op == 's' then
      redis.call('HSET', KEYS[2], ARGV[base], ARGV[base + 3])
    elseif op == 'd' then
      redis.call('HDEL', KEYS[2], ARGV[base])
    end
  end
end
local grants = {}
for i = 1, n do
  local lockKey, queueKey, name = KEYS[1 + 2 * i], KEYS[2 + 2 * i], ARGV[FIRST + (i - 1) * 4]
  local granted = false
  if owned[i] then
    redis.call('DEL', lockKey)
    granted = promote(prefix, KEYS[1], KEYS[2], lockKey, queueKey, name, lease, inboxTtl, selfNode)
  elseif redis.call('EXISTS', lockKey) == 0 then
    -- Our lease ran out and nobody took the lock yet: let the next waiter have it now.
    granted = promote(prefix, KEYS[1], KEYS[2], lockKey, queueKey, name, lease, inboxTtl, selfNode)
  end
  if type(granted) == 'string' then
    grants[#grants + 1] = granted
  end
end
local reply = { #lost == 0 and 1 or 0, #lost }
for _, name in ipairs(lost) do
  reply[#reply + 1] = name
end
for _, message in ipairs(grants) do
  reply[#reply + 1] = message
end
return reply
