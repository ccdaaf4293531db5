--[[
  A waiter gives up (time-out or shutdown): it leaves the queue, or, when the lock was granted to it
  meanwhile (the grant message still on its way), it hands the lock straight on to the next waiter.

  Input:
    KEYS[1] fence counter, KEYS[2] entries hash, KEYS[3] the entry's lock, KEYS[4] its queue
    ARGV[1] alive key prefix, ARGV[2] inbox key prefix
    ARGV[3] lease ms, ARGV[4] inbox ttl ms
    ARGV[5] entry name, ARGV[6] waiter id
  Output:
    1 when it was taken out of the queue, 2 when it held the lock and released it, 0 otherwise.
]]
--- @include "includes/promote"
local name, waiter = ARGV[5], ARGV[6]
local ctx = {
  alive = ARGV[1], inbox = ARGV[2], fence = KEYS[1], data = KEYS[2],
  lease = ARGV[3], inboxTtl = ARGV[4], self = '',
}
if redis.call('LREM', KEYS[4], 1, waiter) == 1 then
  return 1
end
if ownedBy(redis.call('GET', KEYS[3]), waiter) then
  redis.call('DEL', KEYS[3])
  promote(ctx, KEYS[3], KEYS[4], name)
  return 2
end
return 0
