--[[
  Takes the next block of execution numbers from the cluster's counter, never past the largest
  integer a double holds exactly (2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER): near that end the
  block is cut short, and once every number is taken the counter is left alone and the caller
  refuses new executions.

  Input:
    KEYS[1] the execution counter
    ARGV[1] how many numbers to take (the block size), ARGV[2] the largest number ever handed out
  Output:
    { first, last } of the numbers taken, as strings; { "0", "0" } when none is left
]]
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local max = tonumber(ARGV[2])
if current >= max then
  return { '0', '0' }
end
local take = math.min(tonumber(ARGV[1]), max - current)
local last = redis.call('INCRBY', KEYS[1], take)
return { string.format('%d', last - take + 1), string.format('%d', last) }
