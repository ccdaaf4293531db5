--[[
  The one atomic step of a restore: puts back the storage (the staged hash replaces the entries hash
  whole), the session identity and the execution counter (raised, never lowered), and breaks the
  storage locks held now, so that a storage.use that read the old entries cannot commit over the
  restored ones (its commit finds its lock gone and writes nothing, as after a lost lease).

  Input:
    KEYS[1] storage entries hash
    KEYS[2] staged entries (absent when the backup has none)
    KEYS[3] session identity hash
    KEYS[4] execution counter
    KEYS[5] restore counter
    KEYS[6..] storage lock keys to break
    ARGV[1] "1" when entries were staged, else "0"
    ARGV[2] the counter floor
    ARGV[3..] identity field, value, field, value, ...
  Output:
    the restore counter (how many restores this deployment has seen); an error reply starting with
    RESTORE_STAGING_LOST when the staged entries expired before the swap.
]]
if ARGV[1] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    return redis.error_reply('RESTORE_STAGING_LOST the staged entries expired before the swap')
  end
  redis.call('RENAME', KEYS[2], KEYS[1])
  -- The staged hash carried a safety TTL; RENAME keeps it, the storage must not.
  redis.call('PERSIST', KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[3])
if #ARGV > 2 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 3))
end
local current = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if tonumber(ARGV[2]) > current then
  redis.call('SET', KEYS[4], ARGV[2])
end
for i = 6, #KEYS do
  redis.call('DEL', KEYS[i])
end
return redis.call('INCR', KEYS[5])
