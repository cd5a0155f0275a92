-- Would one more request of this identity be admitted? Reads, never writes (a lookup that
-- may be refused asks first, so a flood of made-up API keys never reaches the database).
-- KEYS: 1 the identity's state key (resilience/ratelimit/keys.py).
-- ARGV: 1 limit, 2 burst, 3 window_ms, 4 now_ms ('' = Redis server TIME).
-- Reply: {allowed 0|1, reset_after_ms, retry_after_ms}.
local now_ms = tonumber(ARGV[4])
if now_ms == nil then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
end
return rate_limit_peek(KEYS[1], now_ms, ARGV[1], ARGV[2], ARGV[3])
