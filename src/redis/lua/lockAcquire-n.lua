--[[
  Takes the locks of one storage.use, in the (sorted) order given, as far as they are free.
  When a lock is held, the waiter is queued on it and will get a grant message; it holds the keys
  before that one and none after it.

  Input:
    KEYS[1] fence counter
    KEYS[2] entries hash
    KEYS[1+2i], KEYS[2+2i] lock and queue of entry i (i = 1..n)
    ARGV[1] alive key prefix, ARGV[2] inbox key prefix (a node id follows each)
    ARGV[3] waiter id "<node>.<n>"
    ARGV[4] lease ms, ARGV[5] inbox ttl ms
    ARGV[6] the tx lease key prefix (a tx id follows it)
    ARGV[6+i] name of entry i
  Output:
    { 1, lockValue, 0, json1, json2, ... } when every lock was taken (json "" = absent entry), or
    { 0, lockValue, pttl, json1, ... } with the entries taken so far when the next one is held
    (pttl: that lock's remaining lease). Also marks the waiter's node alive when it queues.
    A lock marked with a multi-slot commit ("tx:<id>", SPROCD_STORAGE_SLOTS > 1) is held: its lease
    is the tx lease's, 0 when that ran out (in doubt: the waiter's re-check recovers the tx at once).
    With KEYS[2] never written (data slots), every json is "": the node reads them after the grant.
]]
--- @include "includes/promote"
local waiter = ARGV[3]
local ctx = {
  alive = ARGV[1], inbox = ARGV[2], fence = KEYS[1], data = KEYS[2],
  lease = ARGV[4], inboxTtl = ARGV[5], self = '',
}
local n = (#KEYS - 2) / 2
local lockValue = ''
local out = { 1, '', 0 }
for i = 1, n do
  local lockKey, queueKey, name = KEYS[1 + 2 * i], KEYS[2 + 2 * i], ARGV[6 + i]
  local free = redis.call('EXISTS', lockKey) == 0
  if free and redis.call('LLEN', queueKey) > 0 then
    -- The holder's lease ran out while others waited: serve them first, in their order.
    promote(ctx, lockKey, queueKey, name)
    free = redis.call('EXISTS', lockKey) == 0
  end
  if not free then
    redis.call('RPUSH', queueKey, waiter)
    local node = string.match(waiter, '^([^.]+)%.')
    redis.call('SET', ctx.alive .. node, '1', 'PX', ctx.lease)
    local pttl = redis.call('PTTL', lockKey)
    local held = redis.call('GET', lockKey)
    if held and string.sub(held, 1, 3) == 'tx:' then
      pttl = math.max(0, redis.call('PTTL', ARGV[6] .. string.sub(held, 4)))
    end
    out[1] = 0
    out[2] = lockValue
    out[3] = pttl
    return out
  end
  if lockValue == '' then
    lockValue = string.format('%d', redis.call('INCR', KEYS[1])) .. ':' .. waiter
  end
  redis.call('SET', lockKey, lockValue, 'PX', ctx.lease)
  local value = redis.call('HGET', KEYS[2], name)
  if not value then
    value = ''
  end
  out[#out + 1] = value
end
out[2] = lockValue
return out
