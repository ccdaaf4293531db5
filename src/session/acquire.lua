-- Takes the locks of one storage.use, in the (sorted) order given, as far as they are free.
-- KEYS[1] fence counter, KEYS[2] data hash, then per entry i: KEYS[1+2i] its lock, KEYS[2+2i] its queue.
-- ARGV[1] storage prefix, ARGV[2] waiter id, ARGV[3] lease ms, ARGV[4] inbox ttl ms, ARGV[4+i] entry names.
-- Returns { 1, lockValue, 0, json1, json2, ... } when every lock was taken (json "" = absent entry), or
-- { 0, lockValue, pttl, json1, ... } with the entries taken so far when the next one is held: the
-- waiter is then queued on it and will get a grant message (pttl: that lock's remaining lease).
local prefix, waiter, lease, inboxTtl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = (#KEYS - 2) / 2
local lockValue = ''
local out = { 1, '', 0 }
for i = 1, n do
  local lockKey, queueKey, name = KEYS[1 + 2 * i], KEYS[2 + 2 * i], ARGV[4 + i]
  local free = redis.call('EXISTS', lockKey) == 0
  if free and redis.call('LLEN', queueKey) > 0 then
    -- The holder's lease ran out while others waited: serve them first, in their order.
    promote(prefix, KEYS[1], KEYS[2], lockKey, queueKey, name, lease, inboxTtl, '')
    free = redis.call('EXISTS', lockKey) == 0
  end
  if not free then
    redis.call('RPUSH', queueKey, waiter)
    local node = string.match(waiter, '^([^.]+)%.')
    redis.call('SET', prefix .. ':alive:' .. node, '1', 'PX', lease)
    local pttl = redis.call('PTTL', lockKey)
    out[1] = 0
    out[2] = lockValue
    out[3] = pttl
    return out
  end
  if lockValue == '' then
    lockValue = string.format('%d', redis.call('INCR', KEYS[1])) .. ':' .. waiter
  end
  redis.call('SET', lockKey, lockValue, 'PX', lease)
  local value = redis.call('HGET', KEYS[2], name)
  if not value then
    value = ''
  end
  out[#out + 1] = value
end
out[2] = lockValue
return out
