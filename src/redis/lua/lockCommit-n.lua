--[[
  Ends a storage.use: checks that every lock is still held with its fencing token, then writes all
  changed entries at once and releases every lock, granting each to its next waiter. When any lock
  was lost (its lease ran out), nothing is written; the locks still held are released all the same.
  A run fence (an execution's job lock, checked on the server the commit reaches) refuses the writes
  the same way: a run that no longer holds its job there, because its lease ran out or because it
  took the job from a master that the sentinels have since replaced, writes nothing.
  Waiters of the committing node that arrived while it held a key join that key's queue here, before
  the lock is handed on ("riders", see session/locks.ts).

  Input:
    KEYS[1] fence counter
    KEYS[2] entries hash
    KEYS[3] the run fence's key (the entries hash again when there is none)
    KEYS[2+2i], KEYS[3+2i] lock and queue of entry i (i = 1..n)
    ARGV[1] alive key prefix, ARGV[2] inbox key prefix (a node id follows each)
    ARGV[3] lease ms, ARGV[4] inbox ttl ms
    ARGV[5] the committing node
    ARGV[6] the value the run fence's key must hold ('' when there is no fence)
    ARGV[7] "1" when the entries live in data slots (SPROCD_STORAGE_SLOTS > 1): decide, do not write
    ARGV[8] the tx record key prefix, ARGV[9] the tx lease key prefix (the tx id follows each)
    ARGV[10] the highest version of the entries read under these locks (data slots): the fence
    counter is raised to it first, so the tx's token is above it even if the counter went back
    ARGV[11] the key present while a restore swaps the data slots in: a decide then counts every lock
    as lost (LOCK_LOST), as the restore breaks them
    then per entry, in KEYS order: name, lock value, op ("s" set to the JSON that follows, "d" delete,
    "k" keep), JSON, number of riders r, then r rider waiter ids.
  Output:
    { ok (1, 0 when a lock was lost, -1 when the run fence refused), number of lost locks,
    lostName..., grant message for the committing node's own waiters... }: a lock passed to another
    waiter of the same node travels back in the reply.
    With ARGV[7] = "1" and changes to make: { 2, 0, tx id } (the decide of docs/ARCHITECTURE.md,
    "Storage entries in their own slots"): the tx record (JSON { token, changes: [ [name, op, json], ... ],
    names }) holds the changes, the names of every lock and the commit's fencing token (a fresh one,
    the tx id), every lock now holds "tx:<id>" without a lease (the tx lease key
    has it), the riders are queued; the node applies the changes per slot, then runs lockFinish-n.lua.
]]
--- @include "includes/promote"
local ctx = {
  alive = ARGV[1], inbox = ARGV[2], fence = KEYS[1], data = KEYS[2],
  lease = ARGV[3], inboxTtl = ARGV[4], self = ARGV[5],
}
local n = (#KEYS - 3) / 2
local fenced = ARGV[6] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[6]
local txMode = ARGV[7] == '1'
local entries = {}
local cursor = 12
for i = 1, n do
  local e = {
    name = ARGV[cursor], lockValue = ARGV[cursor + 1], op = ARGV[cursor + 2], json = ARGV[cursor + 3],
    lockKey = KEYS[2 + 2 * i], queueKey = KEYS[3 + 2 * i], riders = {},
  }
  local count = tonumber(ARGV[cursor + 4])
  for r = 1, count do
    e.riders[r] = ARGV[cursor + 4 + r]
  end
  cursor = cursor + 5 + count
  e.owned = redis.call('GET', e.lockKey) == e.lockValue
  entries[i] = e
end
local lost = {}
local restoring = txMode and redis.call('EXISTS', ARGV[11]) == 1
for i = 1, n do
  if restoring or not entries[i].owned then
    lost[#lost + 1] = entries[i].name
  end
end
local changes = {}
local names = {}
if #lost == 0 and not fenced and txMode then
  for i = 1, n do
    local e = entries[i]
    names[i] = e.name
    if e.op ~= 'k' then
      changes[#changes + 1] = { e.name, e.op, e.json }
    end
  end
end
if #changes > 0 then
  -- The commit point: from here on the changes are made, by this node or by a recovery.
  local floor = tonumber(ARGV[10]) or 0
  if floor > (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) then
    redis.call('SET', KEYS[1], string.format('%d', floor))
  end
  local id = string.format('%d', redis.call('INCR', KEYS[1]))
  local txValue = 'tx:' .. id
  redis.call('SET', ARGV[8] .. id, cjson.encode({ token = id, changes = changes, names = names }))
  redis.call('SET', ARGV[9] .. id, '1', 'PX', ctx.lease)
  for i = 1, n do
    local e = entries[i]
    if #e.riders > 0 then
      redis.call('RPUSH', e.queueKey, unpack(e.riders))
    end
    redis.call('SET', e.lockKey, txValue)
  end
  return { 2, 0, id }
end
if #lost == 0 and not fenced and not txMode then
  for i = 1, n do
    local e = entries[i]
    if e.op == 's' then
      redis.call('HSET', KEYS[2], e.name, e.json)
    elseif e.op == 'd' then
      redis.call('HDEL', KEYS[2], e.name)
    end
  end
end
local grants = {}
for i = 1, n do
  local e = entries[i]
  if #e.riders > 0 then
    redis.call('RPUSH', e.queueKey, unpack(e.riders))
  end
  local granted = false
  if e.owned then
    redis.call('DEL', e.lockKey)
    granted = promote(ctx, e.lockKey, e.queueKey, e.name)
  elseif redis.call('EXISTS', e.lockKey) == 0 then
    -- Our lease ran out and nobody took the lock yet: let the next waiter have it now.
    granted = promote(ctx, e.lockKey, e.queueKey, e.name)
  end
  if type(granted) == 'string' then
    grants[#grants + 1] = granted
  end
end
local status = 1
if #lost > 0 then
  status = 0
elseif fenced then
  status = -1
end
local reply = { status, #lost }
for _, name in ipairs(lost) do
  reply[#reply + 1] = name
end
for _, message in ipairs(grants) do
  reply[#reply + 1] = message
end
return reply
