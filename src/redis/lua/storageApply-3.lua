--[[
  Step 2 of a multi-slot commit (SPROCD_STORAGE_SLOTS > 1): writes the changes of one decided tx
  that fall in one data slot. Each entry is written only when the version stored for it is lower than
  the tx's fencing token, so an apply that comes late (a stalled holder, after a recovery finished its
  tx and a newer commit wrote) or twice (the holder and a recovery) never overwrites a newer commit.
  A delete keeps the version, so that a late set cannot bring a deleted entry back. A restore clears
  the versions and sets the slot's floor: no tx decided before it is applied after it.

  Input:
    KEYS[1] the slot's entries hash, KEYS[2] its versions hash, KEYS[3] its floor
    ARGV[1] the tx's fencing token, then per entry: name, op ("s" set, "d" delete), JSON
  Output:
    the number of entries written.
]]
local token = tonumber(ARGV[1])
local written = 0
if token <= tonumber(redis.call('GET', KEYS[3]) or '0') then
  return 0
end
for i = 2, #ARGV, 3 do
  local name, op = ARGV[i], ARGV[i + 1]
  local version = redis.call('HGET', KEYS[2], name)
  if not version or tonumber(version) < token then
    if op == 's' then
      redis.call('HSET', KEYS[1], name, ARGV[i + 2])
    else
      redis.call('HDEL', KEYS[1], name)
    end
    redis.call('HSET', KEYS[2], name, ARGV[1])
    written = written + 1
  end
end
return written
