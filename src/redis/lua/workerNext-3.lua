--[[
  The owner of a worker asks for the message to run: the current one again when there is one (a
  previous owner took it and did not finish it: its attempt is raised), else the next in the mailbox.

  Input:
    KEYS[1] the worker's owner key
    KEYS[2] its state hash
    KEYS[3] its mailbox
    ARGV[1] the owner's token, ARGV[2] now (ms)
  Output:
    {-1}: the token does not own the worker; {0}: nothing to run (marked idle);
    {attempt, message JSON}: run it
]]
--- @include "includes/workerTake"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {-1}
end
local current = redis.call('HGET', KEYS[2], 'cur')
if current then
  local attempt = redis.call('HINCRBY', KEYS[2], 'att', 1)
  redis.call('HSET', KEYS[2], 'at', ARGV[2])
  return {attempt, current}
end
return takeNext(ARGV[2])
