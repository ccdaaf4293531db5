--[[
  A restore's swap of one data slot (SPROCD_STORAGE_SLOTS > 1): the staged hash replaces the slot's
  entries whole, the versions are cleared, and the slot's floor is raised to the restore's fencing
  token, so that no tx decided before the restore is applied here after it (storageApply-3.lua).

  Input:
    KEYS[1] the slot's entries hash, KEYS[2] its versions, KEYS[3] its staged entries, KEYS[4] its floor
    ARGV[1] "1" when entries were staged for this slot, else "0"; ARGV[2] the restore's fencing token
  Output:
    1; an error reply starting with RESTORE_STAGING_LOST when the staged entries expired.
]]
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then
  return redis.error_reply('RESTORE_STAGING_LOST the staged entries expired before the swap')
end
if ARGV[1] == '1' then
  redis.call('RENAME', KEYS[3], KEYS[1])
  redis.call('PERSIST', KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[2]) > floor then
  redis.call('SET', KEYS[4], ARGV[2])
end
return 1
