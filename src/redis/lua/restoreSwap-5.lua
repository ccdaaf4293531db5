--[[
  The one atomic step of a restore: puts back the storage (the staged hash replaces the entries hash
  whole), the session identity and the execution counter (raised, never lowered), and breaks the
  storage locks of every entry stored now or coming back, so that a storage.use that read the old
  entries cannot commit over the restored ones (its commit finds its lock gone and writes nothing,
  as after a lost lease). The lock keys are built here from the entry names (they share the
  deployment's hash tag), in DEL batches: passing them as KEYS broke past ~100,000 entries.

  Input:
    KEYS[1] storage entries hash
    KEYS[2] staged entries (absent when the backup has none)
    KEYS[3] session identity hash
    KEYS[4] execution counter
    KEYS[5] restore counter
    ARGV[1] "1" when entries were staged, else "0"
    ARGV[2] the counter floor
    ARGV[3] storage lock key prefix (the entry name follows it)
    ARGV[4..] identity field, value, field, value, ...
  Output:
    the restore counter (how many restores this deployment has seen); an error reply starting with
    RESTORE_STAGING_LOST when the staged entries expired before the swap (nothing is changed).
]]
local function breakLocks(hash)
  local names = redis.call('HKEYS', hash)
  local batch = {}
  for i = 1, #names do
    batch[#batch + 1] = ARGV[3] .. names[i]
    if #batch == 1000 then
      redis.call('DEL', unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    redis.call('DEL', unpack(batch))
  end
end

if ARGV[1] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('RESTORE_STAGING_LOST the staged entries expired before the swap')
end
breakLocks(KEYS[1])
if ARGV[1] == '1' then
  breakLocks(KEYS[2])
  redis.call('RENAME', KEYS[2], KEYS[1])
  -- The staged hash carried a safety TTL; RENAME keeps it, the storage must not.
  redis.call('PERSIST', KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[3])
if #ARGV > 3 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 4))
end
local current = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if tonumber(ARGV[2]) > current then
  redis.call('SET', KEYS[4], ARGV[2])
end
return redis.call('INCR', KEYS[5])
