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
-- key lived, ix = when (µs) the key and its index entries expire: at least the time
-- the identity is back to a full allowance, at most the longer of the index horizon
-- (60 s) and twice the tolerance after a renewal.
-- Reply: {allowed 0|1, remaining, reset_after_ms, retry_after_ms, ttl_ms, index_due 0|1, index_ttl_ms}.
-- rate_limit_peek(...) answers the same question without counting (for a lookup that may be refused).

-- How long (ms) an identity stays listed after an index refresh, at least. A hit inside it
-- skips the index, so sparse traffic over many identities (each with a tolerance of a few
-- ms) refreshes each identity's entry once per horizon instead of on nearly every request.
local RATE_LIMIT_INDEX_HORIZON_MS = 60000

local function rate_limit(key, now_ms, limit, burst, window_ms, cost)
  limit = tonumber(limit)
  burst = tonumber(burst)
  window_ms = tonumber(window_ms)
  cost = tonumber(cost)
  -- Integer microseconds keep every value exact in Lua's doubles (< 2^53 until the year 2255).
  local now = math.floor(tonumber(now_ms) * 1000 + 0.5)
  local interval = math.ceil(window_ms * 1000 / limit)
  local tolerance = interval * (burst + 1)
  local state = redis.call('HMGET', key, 't', 'ix', 'l', 'b', 'w')
  local tat = tonumber(state[1])
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + cost * interval
  if new_tat - now > tolerance then
    -- Denied: nothing changes but the denial count, so retries cannot push the window forward.
    local retry_after = new_tat - tolerance - now
    if state[1] then
      redis.call('HINCRBY', key, 'd', 1)
    end
    return {0, 0, math.ceil((tat - now) / 1000), math.ceil(retry_after / 1000), 0, 0, 0}
  end
  local ttl = math.ceil((new_tat - now) / 1000)
  -- The key and its index entries live until `ix` = now + max(horizon, 2 x tolerance),
  -- renewed only when the allowance would outlive them: an identity pays for the index
  -- (~7 commands) at most once per horizon or tolerance period, not on every request.
  local expires_at = tonumber(state[2])
  local index_ttl = 0
  if expires_at == nil or expires_at < new_tat then
    index_ttl = math.max(math.ceil(2 * tolerance / 1000), RATE_LIMIT_INDEX_HORIZON_MS)
    expires_at = now + index_ttl * 1000
    redis.call('HSET', key, 't', new_tat, 'l', limit, 'b', burst, 'w', window_ms, 'ix', expires_at)
    redis.call('PEXPIRE', key, index_ttl)
  elseif tonumber(state[3]) ~= limit or tonumber(state[4]) ~= burst or tonumber(state[5]) ~= window_ms then
    redis.call('HSET', key, 't', new_tat, 'l', limit, 'b', burst, 'w', window_ms)  -- the plan changed
  else
    redis.call('HSET', key, 't', new_tat)
  end
  local remaining = math.floor((tolerance - (new_tat - now)) / interval)
  return {1, remaining, ttl, 0, ttl, index_ttl > 0 and 1 or 0, index_ttl}
end

-- Record an identity as active in its slot's index (a sorted set scored by a time, in
-- ms, no earlier than the state key's expiry) and drop entries whose time has passed.
-- rate_limit() says when it is due (reply[6]) and the ttl (reply[7]). The index is a key
-- the caller passed in KEYS, in the same slot as the state key.
local function rate_limit_index(idx, member, now_ms, ttl_ms)
  local now = math.floor(tonumber(now_ms))
  redis.call('ZADD', idx, now + tonumber(ttl_ms), member)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  -- The index lives as long as its longest-lived member (a key without TTL reports -1).
  if redis.call('PTTL', idx) < tonumber(ttl_ms) then
    redis.call('PEXPIRE', idx, ttl_ms)
  end
end

-- Would rate_limit(key, now_ms, limit, burst, window_ms, 1) admit a request? Reads, never writes.
-- Reply: {allowed 0|1, reset_after_ms, retry_after_ms}.
local function rate_limit_peek(key, now_ms, limit, burst, window_ms)
  local now = math.floor(tonumber(now_ms) * 1000 + 0.5)
  local interval = math.ceil(tonumber(window_ms) * 1000 / tonumber(limit))
  local tolerance = interval * (tonumber(burst) + 1)
  local tat = tonumber(redis.call('HGET', key, 't'))
  if tat == nil or tat < now then
    tat = now
  end
  if tat + interval - now > tolerance then
    return {0, math.ceil((tat - now) / 1000), math.ceil((tat + interval - tolerance - now) / 1000)}
  end
  return {1, math.ceil((tat - now) / 1000), 0}
end
