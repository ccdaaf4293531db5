--[[
  Right after BullMQ added a batch of executions: checks that each job is the execution this node
  added (BullMQ silently keeps the job it has when an id is taken, so a number that is already in use
  shows here as a job holding another execution's id), indexes each one that is, and sweeps a little
  of one index (src/procedures/execution-index.ts). Only a restore puts back executions under numbers
  the counter had handed out; an execution whose number was taken while the restore counter read
  what it reads now is its own job, and is indexed without reading the job (numberBlock-2.lua).

  An execution is indexed in the sorted set of its procedure and in that of its process name, scored
  by its creation time. Each index key is listed in the sweep set, scored by when the sweep looks at
  it next; each call looks at up to ARGV[3] members of one due index, from where the last call
  stopped, and takes out those whose job is gone (BullMQ's retention removed it). An index emptied
  this way is deleted. The index keys and job hashes the sweep reads are not in KEYS: they share the
  deployment's {prefix} hash tag, so they live in the same slot (BullMQ's own scripts do the same).

  Input:
    KEYS[1] sweep set, KEYS[2] sweep positions hash, KEYS[3] execution counter (KEYS[4] again when
    the counter lives in another slot: a queue shard's call, whose caller raises it), KEYS[4] restore
    counter (a key never written, for a queue shard: its executions come with "" and are read), then for each execution: job hash, procedure index, process-name index (the procedure index
    again when it has no name)
    ARGV[1] now (ms), ARGV[2] pause between two passes of the sweep over one index (ms),
    ARGV[3] index members the sweep looks at per call, ARGV[4] job hash prefix (+ job id = job hash),
    then for each execution: job id, execution id (the UUID in its data), creation time (ms),
    number, 1 when it has a process name else 0, the restore counter when its number was taken
    ("" when unknown: the job is read)
  Output:
    for each execution: 1 when the job is that execution (indexed), 0 when it holds another one (the
    counter was raised past the number, unless the caller raises it)
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
local pause = tonumber(ARGV[2])
local out = {}
local count = (#KEYS - 4) / 3
local restores = rcall('GET', KEYS[4]) or '0'
-- The members of each index, gathered so that each index gets one ZADD per call, not one per
-- execution: a call from Lua costs more than the work of a ZADD member.
local adds = {}
local order = {}
local function add(index, created, jobId)
  local list = adds[index]
  if not list then
    list = {}
    adds[index] = list
    order[#order + 1] = index
  end
  list[#list + 1] = created
  list[#list + 1] = jobId
end
for i = 1, count do
  local jobKey, procIndex, nameIndex = KEYS[3 * i + 2], KEYS[3 * i + 3], KEYS[3 * i + 4]
  local a = 4 + (i - 1) * 6
  local jobId, id, created, number, named = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local data = true
  if ARGV[a + 6] ~= restores then
    data = rcall('HGET', jobKey, 'data')
  end
  if data and data ~= true and not string.find(data, id, 1, true) then
    -- Another execution holds this number: the next numbers this node takes start past it.
    if KEYS[3] ~= KEYS[4] and tonumber(rcall('GET', KEYS[3]) or '0') < tonumber(number) then
      rcall('SET', KEYS[3], number)
    end
    out[i] = 0
  else
    -- A job read and found gone (it ran and retention removed it) is not indexed: there is nothing
    -- to find. One not read is indexed; if it is gone already, the sweep or a listing takes it out.
    if data then
      add(procIndex, created, jobId)
      if named == '1' then
        add(nameIndex, created, jobId)
      end
    end
    out[i] = 1
  end
end
if #order > 0 then
  local sweeps = {}
  for _, index in ipairs(order) do
    rcall('ZADD', index, unpack(adds[index]))
    sweeps[#sweeps + 1] = now + pause
    sweeps[#sweeps + 1] = index
  end
  rcall('ZADD', KEYS[1], 'NX', unpack(sweeps))
end

local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)[1]
if due then
  local batch = tonumber(ARGV[3])
  local at = tonumber(rcall('HGET', KEYS[2], due) or '0')
  local members = rcall('ZRANGE', due, at, at + batch - 1)
  local gone = {}
  for _, member in ipairs(members) do
    if rcall('EXISTS', ARGV[4] .. member) == 0 then
      gone[#gone + 1] = member
    end
  end
  if #gone > 0 then
    rcall('ZREM', due, unpack(gone))
  end
  if #members < batch then
    -- The pass reached the end: the next one starts from the oldest after the pause.
    rcall('HDEL', KEYS[2], due)
    if rcall('EXISTS', due) == 0 then
      rcall('ZREM', KEYS[1], due)
    else
      rcall('ZADD', KEYS[1], now + pause, due)
    end
  else
    rcall('HSET', KEYS[2], due, at + #members - #gone)
  end
end
return out
