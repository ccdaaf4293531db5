--[[
  Shared by the pause scripts (each pulls it in with an @include line; see redis/scripts.ts).

  A paused execution still in BullMQ's wait list carries a mark in its job options (the `opts` JSON
  of its hash): BullMQ hands a worker the options of the job it pops and keeps members it does not
  know, so the worker sees the mark with no further call, and finding the job in the list (LPOS,
  LREM: the whole list) is never needed. `member` is the JSON member, `"<key>":1`
  (bullmq-internals.ts PAUSE_OPTS_MARK). The options are edited as text, at their start: decoding and
  encoding them again with cjson would rewrite numbers and empty arrays.

  markOpts(jobKey, member) puts the mark in; unmarkOpts(jobKey, member) takes it out (nothing when
  it is not there).
]]
local function markOpts(jobKey, member)
  local opts = redis.call("HGET", jobKey, "opts") or "{}"
  if string.sub(opts, 1, #member + 1) == "{" .. member then
    return
  end
  local rest = string.sub(opts, 2)
  if string.match(rest, "^%s*}") then
    redis.call("HSET", jobKey, "opts", "{" .. member .. "}")
  else
    redis.call("HSET", jobKey, "opts", "{" .. member .. "," .. rest)
  end
end

local function unmarkOpts(jobKey, member)
  local opts = redis.call("HGET", jobKey, "opts")
  if not opts then
    return
  end
  if string.sub(opts, 1, #member + 2) == "{" .. member .. "," then
    redis.call("HSET", jobKey, "opts", "{" .. string.sub(opts, #member + 3))
  elseif opts == "{" .. member .. "}" then
    redis.call("HSET", jobKey, "opts", "{}")
  end
end
