--[[
  One step of a paged listing of the storage's entries (GET /v1/session/entries): HSCAN of the
  entries hash, answered with each entry's name and size only, so that the values never cross the
  network (HSCAN's NOVALUES needs Redis 7.4).

  Input:
    KEYS[1] the entries hash
    ARGV[1] the HSCAN cursor ("0" to start), ARGV[2] its COUNT hint
  Output:
    { next cursor ("0" at the end), name, size in bytes, name, size, ... }
]]
local reply = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local out = { reply[1] }
local found = reply[2]
for i = 1, #found, 2 do
  out[#out + 1] = found[i]
  out[#out + 1] = #found[i + 1]
end
return out
