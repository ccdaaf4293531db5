--[[
  Shared by the lock scripts (each pulls it in with an @include line; see redis/scripts.ts).

  `ctx` carries what every lock script has: ctx.alive and ctx.inbox, the prefixes of the node alive
  keys and inbox keys (the node id follows them); ctx.fence and ctx.data, the fence counter and the
  entries hash; ctx.lease and ctx.inboxTtl in ms; ctx.self, the node running the script ('' for none).

  promote(ctx, lockKey, queueKey, name) hands the lock `lockKey` on entry `name` to the first live
  waiter of `queueKey`, in FIFO order. A waiter id is "<node>.<n>"; waiters of a node whose alive key
  has expired (the process died, or stalled past its lease) are dropped. The grant is complete here:
  the lock is set for the waiter with a fresh fencing token, and a message carrying the lock value and
  the entry's current JSON is pushed to the waiter's node inbox, where its blocking connection picks it
  up. The waiter does not need another round trip to read the entry.
  When that waiter belongs to ctx.self, the message is returned instead of pushed, and the script
  hands it back in its reply.
  Output: true (or the message) when someone got the lock, false when the queue held no live waiter.

  ownedBy(lockValue, waiter): whether the lock value "<token>:<waiter>" belongs to `waiter`.
]]
local function promote(ctx, lockKey, queueKey, name)
  while true do
    local entry = redis.call('LPOP', queueKey)
    if not entry then
      return false
    end
    local node = string.match(entry, '^([^.]+)%.')
    if node and redis.call('EXISTS', ctx.alive .. node) == 1 then
      local lockValue = string.format('%d', redis.call('INCR', ctx.fence)) .. ':' .. entry
      redis.call('SET', lockKey, lockValue, 'PX', ctx.lease)
      local value = redis.call('HGET', ctx.data, name)
      if not value then
        value = ''
      end
      local message = entry .. '\n' .. lockValue .. '\n' .. cjson.encode(name) .. '\n' .. value
      if node == ctx.self then
        -- The caller's own node: it gets the grant in this script's reply, without the inbox hop.
        return message
      end
      local inbox = ctx.inbox .. node
      redis.call('RPUSH', inbox, message)
      redis.call('PEXPIRE', inbox, ctx.inboxTtl)
      return true
    end
  end
end

local function ownedBy(lockValue, waiter)
  if not lockValue then
    return false
  end
  local suffix = ':' .. waiter
  return string.sub(lockValue, -string.len(suffix)) == suffix
end
