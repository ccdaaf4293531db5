--[[
  CLEAR SEMAPHORE: frees the semaphore only for the holder that took it, and tells waiters.

  Input:
    KEYS[1] the semaphore
    ARGV[1] the holder's value, ARGV[2] the semaphore channel, ARGV[3] the semaphore's name
  Output:
    1 when cleared, 0 when it was not this holder's (anymore)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
