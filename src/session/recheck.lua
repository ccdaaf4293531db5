-- A waiter's safety check when the lease of the lock it waits for should have run out: a holder that
-- died sends no wake-up, so the first waiter to notice hands the lock on (to the head of the queue).
-- Also puts the waiter back in the queue if it was dropped (its node was taken for dead while stalled).
-- KEYS[1] fence counter, KEYS[2] data hash, KEYS[3] lock, KEYS[4] queue.
-- ARGV[1] storage prefix, ARGV[2] lease ms, ARGV[3] inbox ttl ms, ARGV[4] entry name, ARGV[5] waiter id.
-- Returns { 2, 0 } when the lock is (now) the waiter's (its grant message is in the inbox), or
-- { 1, pttl } when it still waits.
local prefix, lease, inboxTtl, name, waiter = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local node = string.match(waiter, '^([^.]+)%.')
redis.call('SET', prefix .. ':alive:' .. node, '1', 'PX', lease)
if redis.call('EXISTS', KEYS[3]) == 0 then
  promote(prefix, KEYS[1], KEYS[2], KEYS[3], KEYS[4], name, lease, inboxTtl, '')
end
local lockValue = redis.call('GET', KEYS[3])
if ownedBy(lockValue, waiter) then
  return { 2, 0 }
end
if not redis.call('LPOS', KEYS[4], waiter) then
  redis.call('RPUSH', KEYS[4], waiter)
  if not lockValue then
    promote(prefix, KEYS[1], KEYS[2], KEYS[3], KEYS[4], name, lease, inboxTtl, '')
    return { 2, 0 }
  end
end
local pttl = redis.call('PTTL', KEYS[3])
if pttl < 0 then
  pttl = tonumber(lease)
end
return { 1, pttl }
