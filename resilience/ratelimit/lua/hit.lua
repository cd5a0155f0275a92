-- Entry script: one decision plus, when due, the index update, in one round trip.
-- KEYS: 1 the identity's state key, 2 its slot's index (resilience/ratelimit/keys.py: one hash tag).
-- ARGV: 1 limit, 2 burst, 3 window_ms, 4 cost, 5 now_ms ('' = Redis server TIME),
--       6 the identity's member in the index.
local now_ms = tonumber(ARGV[5])
if now_ms == nil then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
end
local result = rate_limit(KEYS[1], now_ms, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if result[6] == 1 then
  rate_limit_index(KEYS[2], ARGV[6], now_ms, result[7])
end
-- The caller needs the first four: allowed, remaining, reset_after_ms, retry_after_ms.
return {result[1], result[2], result[3], result[4]}
