--[[
  The batched round trip of a worker (redis/batched-worker.ts): files F executions that completed and
  takes up to N waiting ones, in one call, leaving Redis exactly as BullMQ's moveToFinished and
  moveToActive would, one job at a time, for the jobs it handles. It handles only the common case and
  says so for the rest, before writing anything for them, so that the caller takes BullMQ's own script
  for those:
    - a completed job with a parent, a deduplication id or children (`code` 1);
    - a take when the queue has a rate limit or a global concurrency, a delayed job is due, or the wait
      list is empty while prioritized or delayed jobs exist (`state` 2: priorities and the next delay's
      time are BullMQ's to answer); a queue with nothing at all is answered here (`state` 3).
  The per-call work BullMQ does per job is done once per call: the events stream's trim, the retention
  of finished jobs (by count and by age), the `drained` check and the marker.

  Input:
    KEYS[1] wait, KEYS[2] active, KEYS[3] prioritized, KEYS[4] events stream, KEYS[5] stalled,
    KEYS[6] delayed, KEYS[7] meta, KEYS[8] marker, KEYS[9] completed
    ARGV[1] job key prefix, ARGV[2] timestamp, ARGV[3] N (jobs to take), ARGV[4] lock duration (ms),
    ARGV[5] worker name ("" for none), ARGV[6] retention count (-1 keeps all, 0 keeps none), ARGV[7]
    retention age in seconds ("" for none), ARGV[8] retention age's limit per call, ARGV[9] F, ARGV[10]
    "1" when the jobs may have side keys for retention to delete (logs, a flow's sets), else "0"; then F
    times: job id, its lock token, its return value (JSON), its attempts made as the caller took it ("" to
    read them: a job with a parent or a deduplication id, or one not taken by BullMQ 6); then N lock
    tokens, one per job to take
    (BullMQ locks the job a finished one fetches with the finished one's token)
  Output:
    { codes (one per finished job: 0 filed; BullMQ's moveToFinished codes -1 missing, -2 lock missing,
      -3 not active, -4 pending children, -6 lock not owned, -9 failed children; 1 not filed, use
      BullMQ's script), jobs (flat: each taken job's HGETALL as it was before the take wrote its
      processedOn, pb and ats, then its id), state (0 every job asked for was taken; 1 the queue is
      paused; 2 take the next job with BullMQ's script; 3 no job waits, prioritized or delayed) }
]]
local rcall = redis.call
local waitKey, activeKey, prioritizedKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local stalledKey, delayedKey, metaKey, markerKey, completedKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local prefix, timestamp = ARGV[1], ARGV[2]
local wanted = tonumber(ARGV[3])
local keepCount = tonumber(ARGV[6])
local nFinish = tonumber(ARGV[9])
local sideKeys = ARGV[10] == "1"
local tokensAt = 10 + nFinish * 4

-- What retention deletes of a job: its hash and, as BullMQ's removeJob, its five side keys (its logs, and
-- the sets of a flow's parent: dependencies, processed, failed, unsuccessful), in few DELs. Looking each
-- up costs about as much as the rest of a job's filing: a caller whose jobs never have them (ARGV[10]
-- "0": sprocd writes neither BullMQ job logs nor flows) has only the hashes deleted.
local function removeJobs(jobIds)
  local keys = {}
  for _, jobId in ipairs(jobIds) do
    local jobKey = prefix .. jobId
    keys[#keys + 1] = jobKey
    if sideKeys then
      keys[#keys + 1] = jobKey .. ":logs"
      keys[#keys + 1] = jobKey .. ":dependencies"
      keys[#keys + 1] = jobKey .. ":processed"
      keys[#keys + 1] = jobKey .. ":failed"
      keys[#keys + 1] = jobKey .. ":unsuccessful"
    end
    if #keys >= 996 then
      rcall("DEL", unpack(keys))
      keys = {}
    end
  end
  if #keys > 0 then
    rcall("DEL", unpack(keys))
  end
end

-- A number passed to Redis from Lua is formatted with printf; the few values a batch writes (attempt
-- counts) are formatted once each.
local numbers = {}
local function numberString(n)
  local s = numbers[n]
  if not s then
    s = tostring(n)
    numbers[n] = s
  end
  return s
end

local codes = {}
local filed = 0
if nFinish > 0 then
  -- BullMQ trims before each job's events; once before the batch's leaves the same bound (approximate).
  local maxEvents = rcall("HGET", metaKey, "opts.maxLenEvents")
  if not maxEvents then
    maxEvents = 10000
    rcall("HSET", metaKey, "opts.maxLenEvents", maxEvents)
  end
  rcall("XTRIM", eventsKey, "MAXLEN", "~", maxEvents)
end
-- What the jobs of the batch share is written once after the loop (one command for all, not one each):
-- their locks deleted and stalled marks removed (for each job whose lock was its own, as BullMQ does
-- before it checks the active list), their entries in the completed set.
local locks, stalledIds, completed = {}, {}, {}
-- The reads every job of the batch needs go in one command each where they can (a call from Lua costs
-- about as much as a small command): whether any has children's sets, and their locks.
local childKeys, lockKeys = {}, {}
for i = 1, nFinish do
  local o = 10 + (i - 1) * 4
  local jobKey = prefix .. ARGV[o + 1]
  childKeys[2 * i - 1] = jobKey .. ":dependencies"
  childKeys[2 * i] = jobKey .. ":unsuccessful"
  lockKeys[i] = jobKey .. ":lock"
end
local anyChildren = nFinish > 0 and rcall("EXISTS", unpack(childKeys)) > 0
local held = nFinish > 0 and rcall("MGET", unpack(lockKeys)) or {}
-- The jobs that passed every check, in order, and what they need once out of the active list.
local filing, idOf, madeOf, removed = {}, {}, {}, {}
for i = 1, nFinish do
  local o = 10 + (i - 1) * 4
  local jobId, token, value, made = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local jobKey = prefix .. jobId
  local code = 0
  local attrs
  if made ~= "" and token ~= "0" then
    -- The caller read the job when it took it (no parent, no deduplication id, a start count, its
    -- attempts made): while its lock is the caller's, nobody else changed those, so they are not read
    -- again. A job whose lock is not the caller's is told apart from a missing one as BullMQ does.
    attrs = { false, false, false, "1", made }
    if held[i] ~= token and rcall("EXISTS", jobKey) == 0 then
      code = -1
    end
  else
    attrs = rcall("HMGET", jobKey, "parentKey", "parent", "deid", "ats", "atm")
  end
  if code ~= 0 then
    -- Missing (above).
  elseif not attrs[4] then
    -- Every job a worker holds has a start count (ats): none, and it is gone or not BullMQ 6's to file.
    code = rcall("EXISTS", jobKey) == 0 and -1 or 1
  elseif anyChildren and rcall("EXISTS", childKeys[2 * i - 1], childKeys[2 * i]) > 0 then
    -- A set Redis holds is not empty: pending children, or failed ones.
    code = rcall("EXISTS", childKeys[2 * i - 1]) == 1 and -4 or -9
  elseif attrs[1] or attrs[2] or attrs[3] then
    code = 1
  else
    if token ~= "0" then
      local lock = held[i]
      if lock ~= token then
        code = lock and -6 or -2
      else
        locks[#locks + 1] = lockKeys[i]
        stalledIds[#stalledIds + 1] = jobId
      end
    end
    if code == 0 then
      filing[#filing + 1] = i
      idOf[i] = jobId
      madeOf[i] = attrs[5]
    end
  end
  codes[i] = code
end

-- Out of the active list, as BullMQ's LREM (from the tail) one by one would leave it. Jobs end mostly
-- in the order they were taken, and takes push onto the head: the list's tail is mostly this batch,
-- which goes in one LTRIM; the rest one LREM each. A job not in the list is not active (-3).
if #filing > 0 then
  local filingAt = {}
  for _, i in ipairs(filing) do
    filingAt[idOf[i]] = i
  end
  local tail = rcall("LRANGE", activeKey, -#filing, -1)
  local cut = 0
  for j = #tail, 1, -1 do
    local i = filingAt[tail[j]]
    if not i or removed[i] then
      break
    end
    removed[i] = true
    cut = cut + 1
  end
  if cut > 0 then
    rcall("LTRIM", activeKey, 0, -(cut + 1))
  end
  for _, i in ipairs(filing) do
    if not removed[i] and rcall("LREM", activeKey, -1, idOf[i]) > 0 then
      removed[i] = true
    end
  end
end
for _, i in ipairs(filing) do
  local jobId, value = idOf[i], ARGV[10 + (i - 1) * 4 + 3]
  local jobKey = prefix .. jobId
  if not removed[i] then
    codes[i] = -3
  else
    if keepCount ~= 0 then
      completed[#completed + 1] = timestamp
      completed[#completed + 1] = jobId
      -- BullMQ's HINCRBY of atm, then its HSET of the result, in one write.
      rcall("HSET", jobKey, "atm", numberString((tonumber(madeOf[i]) or 0) + 1), "returnvalue", value,
        "finishedOn", timestamp)
    else
      removeJobs({ jobId })
    end
    rcall("XADD", eventsKey, "*", "event", "completed", "jobId", jobId, "returnvalue", value,
      "prev", "active")
    filed = filed + 1
  end
end
if #locks > 0 then
  rcall("DEL", unpack(locks))
  rcall("SREM", stalledKey, unpack(stalledIds))
end
if #completed > 0 then
  rcall("ZADD", completedKey, unpack(completed))
end

if filed > 0 and keepCount ~= 0 then
  if ARGV[7] ~= "" then
    local start = timestamp - tonumber(ARGV[7]) * 1000
    local limit = tonumber(ARGV[8])
    local old = rcall("ZREVRANGEBYSCORE", completedKey, start, "-inf", "LIMIT", 0, limit)
    removeJobs(old)
    if #old > 0 then
      if #old < limit then
        rcall("ZREMRANGEBYSCORE", completedKey, "-inf", start)
      else
        for from = 1, #old, 5000 do
          rcall("ZREM", completedKey, unpack(old, from, math.min(from + 4999, #old)))
        end
      end
    end
  end
  if keepCount > 0 then
    local over = rcall("ZREVRANGE", completedKey, keepCount, -1)
    removeJobs(over)
    if #over > 0 then
      rcall("ZREMRANGEBYRANK", completedKey, 0, -(keepCount + 1))
    end
  end
end

local jobs = {}
local state = 0
if wanted > 0 then
  local meta = rcall("HMGET", metaKey, "paused", "concurrency", "max", "duration")
  if meta[1] then
    state = 1
  elseif meta[2] or meta[3] or
      #rcall("ZRANGEBYSCORE", delayedKey, 0, (timestamp + 1) * 0x1000 - 1, "LIMIT", 0, 1) > 0 then
    state = 2
  else
    local took = 0
    -- One pop and one push for the batch: the active list ends as BullMQ's RPOPLPUSH one by one leaves it.
    local ids = rcall("RPOP", waitKey, wanted)
    if not ids then
      -- Nothing waits at all: the answer BullMQ's script would give (no job, no delay to wait for).
      -- Else a prioritized or delayed job may be there: BullMQ's script takes it or says when.
      if rcall("ZCARD", prioritizedKey) == 0 and rcall("ZCARD", delayedKey) == 0 then
        state = 3
      else
        state = 2
      end
      ids = {}
    end
    for _, jobId in ipairs(ids) do
      if string.sub(jobId, 1, 2) == "0:" then
        -- A marker of BullMQ before v5 in the wait list: all go back, BullMQ's script knows what to do.
        for j = #ids, 1, -1 do
          rcall("RPUSH", waitKey, ids[j])
        end
        ids = {}
        state = 2
        break
      end
    end
    if #ids > 0 then
      rcall("LPUSH", activeKey, unpack(ids))
    end
    for _, jobId in ipairs(ids) do
      local jobKey = prefix .. jobId
      rcall("SET", jobKey .. ":lock", ARGV[tokensAt + took + 1], "PX", ARGV[4])
      rcall("XADD", eventsKey, "*", "event", "active", "jobId", jobId, "prev", "waiting")
      -- The hash as it was: the caller sets processedOn, pb and ats in its copy as they are set here
      -- (BullMQ's HMSET and HINCRBY, in one write).
      local hash = rcall("HGETALL", jobKey)
      local ats = 0
      for f = 1, #hash, 2 do
        if hash[f] == "ats" then
          ats = tonumber(hash[f + 1])
          break
        end
      end
      if ARGV[5] ~= "" then
        rcall("HSET", jobKey, "processedOn", timestamp, "pb", ARGV[5], "ats", numberString(ats + 1))
      else
        rcall("HSET", jobKey, "processedOn", timestamp, "ats", numberString(ats + 1))
      end
      jobs[#jobs + 1] = hash
      jobs[#jobs + 1] = jobId
      took = took + 1
    end
    if took > 0 then
      rcall("ZADD", markerKey, 0, "0")
    end
  end
end

if filed > 0 and rcall("LLEN", waitKey) == 0 and rcall("LLEN", activeKey) == 0 and
    rcall("ZCARD", prioritizedKey) == 0 then
  rcall("XADD", eventsKey, "*", "event", "drained")
end

return { codes, jobs, state }
