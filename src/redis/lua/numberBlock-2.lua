--[[
  Takes the next block of execution numbers from the cluster's counter, never past the largest
  integer a double holds exactly (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER): near that end the
  block is cut short, and once every number is taken the counter is left alone and the caller
  refuses new executions. With the block comes the restore counter as it is now: while it stays the
  same, no restore can have put back an execution holding one of these numbers (a restore raises
  the execution counter past the numbers it puts back and counts itself in the same script, before it
  queues them), so the index need not check that the job it adds is its own
  (executionIndex-n.lua).

  Input:
    KEYS[1] the execution counter, KEYS[2] the restore counter
    ARGV[1] how many numbers to take (the block size), ARGV[2] the largest number ever handed out
  Output:
    { first, last, restores } as strings; first and last are "0" when no number is left
]]
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local max = tonumber(ARGV[2])
local restores = redis.call('GET', KEYS[2]) or '0'
if current >= max then
  return { '0', '0', restores }
end
local take = math.min(tonumber(ARGV[1]), max - current)
local last = redis.call('INCRBY', KEYS[1], take)
return { string.format('%d', last - take + 1), string.format('%d', last), restores }
