--[[
  Renews or releases the cluster's backup lock, only for the holder that set it (compare and act).

  Input:
    KEYS[1] the backup lock
    ARGV[1] "renew" or "release", ARGV[2] the holder's value, ARGV[3] lease ms (for "renew")
  Output:
    1 when done, 0 when the lock is no longer this holder's (its lease ran out).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'renew' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('DEL', KEYS[1])
