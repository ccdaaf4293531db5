--[[
  Step 3 of a multi-slot commit (SPROCD_STORAGE_SLOTS > 1), once every data slot has the tx's
  changes: renames the tx record to its finished name (kept 10 minutes: a backup's snapshot, which
  copies the slots one by one, rolls the txs of that moment forward in its copies), deletes its lease, releases the locks still marked with the tx and
  grants each to its next live waiter, as lockCommit-n.lua does. Run by the committing node, or by
  the node that found the tx in doubt and re-applied it (recovery); a second run finds the record
  gone and releases nothing that the first did not (a lock marked with this tx has no other owner).

  Input:
    KEYS[1] fence counter, KEYS[2] the (never written) entries hash of the lock scripts
    KEYS[3] the tx record, KEYS[4] its lease, KEYS[5] its finished name
    KEYS[4+2i], KEYS[5+2i] lock and queue of entry i (i = 1..n)
    ARGV[1] alive key prefix, ARGV[2] inbox key prefix, ARGV[3] lease ms, ARGV[4] inbox ttl ms
    ARGV[5] the node whose waiters get their grants in the reply ('' for none: all go to inboxes)
    ARGV[6] the locks' value while they apply the tx ("tx:<id>"), ARGV[6+i] name of entry i
  Output:
    { 1 when this run finished the tx (0: it was finished before), grant message... }
]]
--- @include "includes/promote"
local ctx = {
  alive = ARGV[1], inbox = ARGV[2], fence = KEYS[1], data = KEYS[2],
  lease = ARGV[3], inboxTtl = ARGV[4], self = ARGV[5],
}
local txValue = ARGV[6]
local reply = { 0 }
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[5])
  redis.call('PEXPIRE', KEYS[5], 600000)
  reply[1] = 1
end
redis.call('DEL', KEYS[4])
local n = (#KEYS - 5) / 2
for i = 1, n do
  local lockKey, queueKey, name = KEYS[4 + 2 * i], KEYS[5 + 2 * i], ARGV[6 + i]
  if redis.call('GET', lockKey) == txValue then
    redis.call('DEL', lockKey)
  end
  if redis.call('EXISTS', lockKey) == 0 then
    local granted = promote(ctx, lockKey, queueKey, name)
    if type(granted) == 'string' then
      reply[#reply + 1] = granted
    end
  end
end
return reply
