-- agentapi-admin rate limiter: GCRA (a sliding window with no fixed boundaries) plus a burst allowance.
--
-- Include this file's text verbatim in any script that needs a decision (the
-- entry script `hit.lua` and the tenants bootstrap script both do), then call
-- rate_limit(...) and, when allowed, rate_limit_index(...). Semantics, proved in
-- docs/rate-limiting.md: with T = window/limit (rounded up to a microsecond),
--   * any interval [t, t + window) admits at most limit + burst units of cost;
--   * up to burst + 1 back-to-back requests are admitted after an idle period;
--   * the sustained rate is limit per window.
-- State is one hash per identity: t = theoretical arrival time (µs, integer),
-- l/b/w = the limit, burst and window (ms) last applied, d = denials while the
-- key lived. The key expires when the identity is back to a full allowance.

local function rate_limit(key, now_ms, limit, burst, window_ms, cost)
  limit = tonumber(limit)
  burst = tonumber(burst)
  window_ms = tonumber(window_ms)
  cost = tonumber(cost)
  -- Integer microseconds keep every value exact in Lua's doubles (< 2^53 until the year 2255).
  local now = math.floor(tonumber(now_ms) * 1000 + 0.5)
  local interval = math.ceil(window_ms * 1000 / limit)
  local tolerance = interval * (burst + 1)
  local tat = tonumber(redis.call('HGET', key, 't'))
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + cost * interval
  if new_tat - now > tolerance then
    -- Denied: nothing changes but the denial count, so retries cannot push the window forward.
    local retry_after = new_tat - tolerance - now
    if redis.call('EXISTS', key) == 1 then
      redis.call('HINCRBY', key, 'd', 1)
    end
    return {0, 0, math.ceil((tat - now) / 1000), math.ceil(retry_after / 1000), 0}
  end
  local ttl = math.ceil((new_tat - now) / 1000)
  redis.call('HSET', key, 't', new_tat, 'l', limit, 'b', burst, 'w', window_ms)
  redis.call('PEXPIRE', key, ttl)
  local remaining = math.floor((tolerance - (new_tat - now)) / interval)
  return {1, remaining, ttl, 0, ttl}
end

-- Record an identity as active in the tenant's and the global index (sorted sets
-- scored by the state key's expiry in ms) and drop entries that already expired.
local function rate_limit_index(idx_all, idx_tenant, member_all, member_tenant, now_ms, ttl_ms)
  local now = math.floor(tonumber(now_ms))
  local expires = now + tonumber(ttl_ms)
  for _, pair in ipairs({{idx_all, member_all}, {idx_tenant, member_tenant}}) do
    redis.call('ZADD', pair[1], expires, pair[2])
    redis.call('ZREMRANGEBYSCORE', pair[1], '-inf', now)
    -- The index lives as long as its longest-lived member (a key without TTL reports -1).
    if redis.call('PTTL', pair[1]) < tonumber(ttl_ms) then
      redis.call('PEXPIRE', pair[1], ttl_ms)
    end
  end
end
