-- Shared by the lock scripts (prepended to acquire, commit and recheck; see scripts.ts).
--
-- Hands the lock `lockKey` on entry `name` to the first live waiter of `queueKey`, in FIFO order.
-- A waiter id is "<node>.<n>"; waiters of a node whose alive key has expired (the process died, or
-- stalled past its lease) are dropped. The grant is complete here: the lock is set for the waiter
-- with a fresh fencing token, and a message carrying the lock value and the entry's current JSON is
-- pushed to the waiter's node inbox, where its blocking connection picks it up. The waiter does not
-- need another round trip to read the entry.
-- When that waiter belongs to `selfNode` (the node running the script; '' for none), the message is
-- returned instead of pushed, and the script hands it back in its reply.
-- Returns true (or the message) when someone got the lock, false when the queue held no live waiter.
local function promote(prefix, fenceKey, dataKey, lockKey, queueKey, name, lease, inboxTtl, selfNode)
  while true do
    local entry = redis.call('LPOP', queueKey)
    if not entry then
      return false
    end
    local node = string.match(entry, '^([^.]+)%.')
    if node and redis.call('EXISTS', prefix .. ':alive:' .. node) == 1 then
      local lockValue = string.format('%d', redis.call('INCR', fenceKey)) .. ':' .. entry
      redis.call('SET', lockKey, lockValue, 'PX', lease)
      local value = redis.call('HGET', dataKey, name)
      if not value then
        value = ''
      end
      local message = entry .. '\n' .. lockValue .. '\n' .. cjson.encode(name) .. '\n' .. value
      if node == selfNode then
        -- The caller's own node: it gets the grant in this script's reply, without the inbox hop.
        return message
      end
      local inbox = prefix .. ':inbox:' .. node
      redis.call('RPUSH', inbox, message)
      redis.call('PEXPIRE', inbox, inboxTtl)
      return true
    end
  end
end

-- Whether the lock value `lockValue` ("<token>:<waiter>") belongs to `waiter`.
local function ownedBy(lockValue, waiter)
  if not lockValue then
    return false
  end
  local suffix = ':' .. waiter
  return string.sub(lockValue, -string.len(suffix)) == suffix
end
