--[[
  Creates a signal (New signal): not signaled, with its description, living `ttl` ms unless used.

  Input:
    KEYS[1] the signal's hash
    ARGV[1] description, ARGV[2] creation time (ms), ARGV[3] ttl ms while unused
  Output:
    1
]]
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'c', ARGV[2], 's', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
