--[[
  Renews the lease of each worker a node owns, only while its owner key still holds the node's
  token, and scores it in the index with the lease's end. Tells the node which of its workers have
  pending messages, so a nudge it missed costs no more than one renewal period.

  Input:
    KEYS[1] the workers index; then for each worker i: KEYS[2i] its owner key, KEYS[2i + 1] its mailbox
    ARGV[1] lease ms, ARGV[2] now (ms); then for each worker i: ARGV[2i + 1] its name, ARGV[2i + 2] the token
  Output:
    one code per worker, in order: 0 no longer owned, 1 owned, 2 owned with pending messages
]]
local lease = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local owner = KEYS[2 * i]
  if redis.call('GET', owner) == ARGV[2 * i + 2] then
    redis.call('PEXPIRE', owner, lease)
    redis.call('ZADD', KEYS[1], now + lease, ARGV[2 * i + 1])
    out[i] = redis.call('LLEN', KEYS[2 * i + 1]) > 0 and 2 or 1
  else
    out[i] = 0
  end
end
return out
