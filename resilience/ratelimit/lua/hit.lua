-- Entry script: one decision plus, when due, the index update, in one round trip.
-- KEYS: state key <prefix>:rl:<scope>:<tenant>:<identity>, <prefix>:rl:idx:all, <prefix>:rl:idx:tenant:<tenant>.
-- ARGV: limit, burst, window_ms, cost[, now_ms] (absent: Redis server TIME).
local now_ms = tonumber(ARGV[5])
if now_ms == nil then
  local clock = redis.call('TIME')
  now_ms = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
end
local result = rate_limit(KEYS[1], now_ms, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if result[6] == 1 then
  -- Members are derived from the state key (fewer arguments on every call, work only when due):
  -- everything after "<prefix>:rl:" is "<scope>:<tenant>:<identity>".
  local member_all = string.sub(KEYS[1], #KEYS[2] - #'idx:all' + 1)
  local scope, identity = string.match(member_all, '^([^:]+):[^:]+:(.*)$')
  rate_limit_index(KEYS[2], KEYS[3], member_all, scope .. ':' .. identity, now_ms, result[7])
end
-- The caller needs the first four: allowed, remaining, reset_after_ms, retry_after_ms.
return {result[1], result[2], result[3], result[4]}
