-- A waiter gives up (time-out or shutdown). KEYS[1] lock, KEYS[2] queue. ARGV[1] waiter id.
-- Returns 1 when it was taken out of the queue, 2 when the lock was granted to it meanwhile (the
-- grant message is on its way, and the waiter must release it), 0 when it was in neither.
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 1 then
  return 1
end
local lockValue = redis.call('GET', KEYS[1])
if lockValue then
  local suffix = ':' .. ARGV[1]
  if string.sub(lockValue, -string.len(suffix)) == suffix then
    return 2
  end
end
return 0
