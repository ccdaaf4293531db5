-- Worker scripts' shared step: the owner takes the next message of the mailbox (KEYS[3]) as the
-- worker's current one (in the state hash KEYS[2]) with attempt 1, started at `now`; with none
-- left, the worker is marked idle, so that the next call nudges its owner.
local function takeNext(now)
  local message = redis.call('LPOP', KEYS[3])
  if not message then
    redis.call('HSET', KEYS[2], 'idle', '1')
    return {0}
  end
  redis.call('HSET', KEYS[2], 'cur', message, 'att', 1, 'at', now)
  return {1, message}
end
