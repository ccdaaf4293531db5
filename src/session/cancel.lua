-- A waiter gives up (time-out or shutdown): it leaves the queue, or, when the lock was granted to it
-- meanwhile (the grant message still on its way), it hands the lock straight on to the next waiter.
-- KEYS[1] fence counter, KEYS[2] data hash, KEYS[3] lock, KEYS[4] queue.
-- ARGV[1] storage prefix, ARGV[2] lease ms, ARGV[3] inbox ttl ms, ARGV[4] entry name, ARGV[5] waiter id.
-- Returns 1 when it was taken out of the queue, 2 when it held the lock and released it, 0 otherwise.
local prefix, lease, inboxTtl, name, waiter = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('LREM', KEYS[4], 1, waiter) == 1 then
  return 1
end
if ownedBy(redis.call('GET', KEYS[3]), waiter) then
  redis.call('DEL', KEYS[3])
  promote(prefix, KEYS[1], KEYS[2], KEYS[3], KEYS[4], name, lease, inboxTtl, '')
  return 2
end
return 0
