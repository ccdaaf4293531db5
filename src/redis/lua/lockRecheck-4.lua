--[[
  A waiter's safety check when the lease of the lock it waits for should have run out: a holder that
  died sends no wake-up, so the first waiter to notice hands the lock on (to the head of the queue).
  Also puts the waiter back in the queue if it was dropped (its node was taken for dead while
  stalled), and marks the waiter's node alive.

  Input:
    KEYS[1] fence counter, KEYS[2] entries hash, KEYS[3] the entry's lock, KEYS[4] its queue
    ARGV[1] alive key prefix, ARGV[2] inbox key prefix
    ARGV[3] lease ms, ARGV[4] inbox ttl ms
    ARGV[5] entry name, ARGV[6] waiter id, ARGV[7] the tx lease key prefix (a tx id follows it)
  Output:
    { 2, 0 } when the lock is (now) the waiter's (its grant message is in the inbox), or
    { 1, pttl } when it still waits, or
    { 3, tx id } when the lock is marked with a multi-slot commit whose lease ran out: in doubt, the
    caller re-applies the tx from its record and finishes it (SPROCD_STORAGE_SLOTS > 1). Such a lock
    has no lease of its own, so it is never handed on here.
]]
--- @include "includes/promote"
local name, waiter = ARGV[5], ARGV[6]
local ctx = {
  alive = ARGV[1], inbox = ARGV[2], fence = KEYS[1], data = KEYS[2],
  lease = ARGV[3], inboxTtl = ARGV[4], self = '',
}
local node = string.match(waiter, '^([^.]+)%.')
redis.call('SET', ctx.alive .. node, '1', 'PX', ctx.lease)
if redis.call('EXISTS', KEYS[3]) == 0 then
  promote(ctx, KEYS[3], KEYS[4], name)
end
local lockValue = redis.call('GET', KEYS[3])
if ownedBy(lockValue, waiter) then
  return { 2, 0 }
end
if lockValue and string.sub(lockValue, 1, 3) == 'tx:' then
  if not redis.call('LPOS', KEYS[4], waiter) then
    redis.call('RPUSH', KEYS[4], waiter)
  end
  local id = string.sub(lockValue, 4)
  local txPttl = redis.call('PTTL', ARGV[7] .. id)
  if txPttl < 0 then
    return { 3, id }
  end
  return { 1, txPttl }
end
if not redis.call('LPOS', KEYS[4], waiter) then
  redis.call('RPUSH', KEYS[4], waiter)
  if not lockValue then
    promote(ctx, KEYS[3], KEYS[4], name)
    return { 2, 0 }
  end
end
local pttl = redis.call('PTTL', KEYS[3])
if pttl < 0 then
  pttl = tonumber(ctx.lease)
end
return { 1, pttl }
