-- Entry script: one decision plus the index update, in one round trip.
-- KEYS: state key, global index, tenant index.
-- ARGV: limit, burst, window_ms, cost, member_all, member_tenant, now_ms ('' = Redis server TIME).
local now_ms = ARGV[7]
if now_ms == nil or now_ms == '' then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
else
  now_ms = tonumber(now_ms)
end
local result = rate_limit(KEYS[1], now_ms, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if result[1] == 1 then
  rate_limit_index(KEYS[2], KEYS[3], ARGV[5], ARGV[6], now_ms, result[5])
end
return result
