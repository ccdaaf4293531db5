--[[
  RESUME PROCESS of an execution paused while in the wait list (pause field "wait": pauseExecution-5.lua
  left it there, marked): takes the mark and the field away, so it runs in its place in the list. When
  a worker popped and parked it meanwhile (dropPopped-6.lua) the field says so and nothing changes
  here: the caller moves it back from the delayed set as for any parked one. O(1) in the queue's size.

  Input:
    KEYS[1] job hash
    ARGV[1] the pause field, ARGV[2] the pause mark's JSON member, ARGV[3] the field keeping
    processedOn, ARGV[4] the field keeping processedBy
  Output:
    the pause field as this script found it ("" when none); when "wait", it is gone now
]]
--- @include "includes/pauseMark"
local rcall = redis.call
local jobKey = KEYS[1]
local field = rcall("HGET", jobKey, ARGV[1])
if field ~= "wait" then
  return field or ""
end
rcall("HDEL", jobKey, ARGV[1])
unmarkOpts(jobKey, ARGV[2])
-- An execution aborted since keeps them: the worker that pops it puts them back (dropPopped-6.lua).
if rcall("HEXISTS", jobKey, "finishedOn") == 0 then
  rcall("HDEL", jobKey, ARGV[3], ARGV[4])
end
return "wait"
