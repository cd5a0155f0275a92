-- Give back what rate_limit(...) took for a request that turned out not to count (a
-- throttle that counts failures reserves before the attempt and refunds a success).
-- KEYS: 1 the identity's state key (resilience/ratelimit/keys.py).
-- ARGV: limit, window_ms, cost, now_ms ('' = Redis server TIME). Reply: 1 when state was changed.
local now_ms = tonumber(ARGV[4])
if now_ms == nil then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
end
local now = math.floor(now_ms * 1000 + 0.5)
local tat = tonumber(redis.call('HGET', KEYS[1], 't'))
if tat == nil or tat <= now then return 0 end
local interval = math.ceil(tonumber(ARGV[2]) * 1000 / tonumber(ARGV[1]))
local new_tat = tat - tonumber(ARGV[3]) * interval
if new_tat <= now then
  -- Back to a full allowance: nothing left to list (the index entry is skipped until it expires).
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 't', new_tat)
end
return 1
