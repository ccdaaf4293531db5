--[[
  Appends a batch of audit entries to the trail in one call (src/auth/audit.ts), each trimmed to the
  trail's bound as XADD MAXLEN does. One script instead of a pipeline: ioredis builds a pipeline by
  copying every script defined on the connection (BullMQ's and sprocd's, about 80), which cost the node
  more than the entries themselves.

  Input:
    KEYS[1] the audit stream
    ARGV[1] the most entries it keeps, ARGV[2..] one entry's JSON each
  Output:
    the stream id of each entry, in order
]]
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[i])
end
return ids
