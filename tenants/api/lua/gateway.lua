-- The service API's one round trip: authenticate the API key from its cached entry,
-- check the tenant serves and the key holds the route's scope, apply the tenant rate
-- limit and daily quota, count usage, and return the cached bootstrap body (or flag rules).
--
-- Who pays for a request: a valid key with the scope spends its tenant's plan limit
-- (never the client address's, so tenants behind one egress address do not share an
-- allowance). Anything else (unknown, revoked or expired key, a tenant that does not
-- serve, a key without the scope) spends the client address's `ip` budget, so guessing
-- keys stays throttled. Only a request that will be served counts as usage (`requests`,
-- which the daily quota reads); refusals count under their own metric.
--
-- `rate_limit`, `rate_limit_index` and `rate_limit_peek` are defined above this text:
-- tenants/api/gateway.py prepends resilience/ratelimit/lua/rate_limit.lua, unchanged.
--
-- KEYS[1]  agentapi:apikey:<sha256 of the key>
-- ARGV     1 key prefix, 2 now_ms ('' = Redis TIME: one clock for every replica),
--          3 document field to return (body|rules), 4 If-None-Match, 5 day YYYYMMDD,
--          6 usage ttl s, 7 rate limiting on (1|0), 8 window ms, 9 global rate-limit index key,
--          10 fill: 0 none, 1 entry, 2 deny, 11 scope the route needs,
--          12 flag key the request asks for ('' = the whole document; a key the document
--          lacks is answered 404 and not counted as usage),
--          13 per-IP limit on (1|0), 14 IP state key, 15 IP tenant-index key, 16 IP member in the
--          global index, 17 IP member in the tenant index, 18 IP limit, 19 IP burst
-- fill=1   20 ttl s, 21 tenant, 22 version, 23 body, 24 etag, 25 rules, 26 flag keys, 27.. entry pairs
-- fill=2   20 ttl s, 21 deny reason
-- Keys other than KEYS[1] are derived from the entry: fine on one Redis or a primary with
-- replicas (this app's deployments), not on Redis Cluster.
-- Count one request; the day's hash gets its lifetime when a metric first appears, not on every call.
local function count(usage, metric, ttl)
  if redis.call('HINCRBY', usage, metric, 1) == 1 then
    redis.call('EXPIRE', usage, ttl)
  end
end

local prefix = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
local fill = ARGV[10]

-- A request that is refused spends the client address's budget; nil when it may have its answer.
local function ip_spent()
  if ARGV[13] ~= '1' then return nil end
  local ip = rate_limit(ARGV[14], now, ARGV[18], ARGV[19], ARGV[8], 1)
  if ip[1] == 0 then return {'limited_ip', ip[2], ip[3], ip[4], ARGV[18]} end
  if ip[6] == 1 then rate_limit_index(ARGV[9], ARGV[15], ARGV[16], ARGV[17], now, ip[7]) end
  return nil
end

if fill == '2' then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'deny', ARGV[21])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[20]))
elseif fill == '1' then
  local ttl = tonumber(ARGV[20])
  local tenant = ARGV[21]
  local version = tonumber(ARGV[22])
  local verkey = prefix .. ':flags:' .. tenant .. ':ver'
  local published = tonumber(redis.call('GET', verkey) or '0')
  -- A newer version is already published: this fill read the database before a commit.
  if version < published then return {'stale'} end
  if version > published then redis.call('SET', verkey, version) end
  local doc = prefix .. ':flags:' .. tenant .. ':' .. version
  redis.call('HSET', doc, 'body', ARGV[23], 'etag', ARGV[24], 'rules', ARGV[25], 'keys', ARGV[26])
  redis.call('EXPIRE', doc, ttl)
  local fields = {}
  for i = 27, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('EXPIRE', KEYS[1], ttl)
end

local e = redis.call('HMGET', KEYS[1], 'tenant', 'ver', 'exp', 'serving', 'status', 'limit', 'burst', 'quota',
  'lu', 'key_id', 'scopes', 'deny', 'rl_key', 'rl_idx', 'rl_member_all', 'rl_member', 'lu_key')
if e[12] then return ip_spent() or {'deny', e[12]} end
if not e[1] then
  -- Unknown to the cache: the caller will ask the database. An address already out of
  -- budget is refused first, so a flood of made-up keys never reaches the database.
  if ARGV[13] == '1' then
    local peek = rate_limit_peek(ARGV[14], now, ARGV[18], ARGV[19], ARGV[8])
    if peek[1] == 0 then return {'limited_ip', 0, peek[2], peek[3], ARGV[18]} end
  end
  return {'miss'}
end
local tenant = e[1]
-- The entry was built for one cache version; any committed write publishes a newer one.
if redis.call('GET', prefix .. ':flags:' .. tenant .. ':ver') ~= e[2] then return {'miss'} end
local exp = tonumber(e[3])
if exp > 0 and now >= exp then return ip_spent() or {'expired'} end

local usage = prefix .. ':usage:' .. tenant .. ':' .. ARGV[5]
local usage_ttl = tonumber(ARGV[6])
if e[4] ~= '1' then
  local limited = ip_spent()
  if limited then return limited end
  count(usage, 'refused_not_serving', usage_ttl)
  return {'not_serving', e[5], tenant}
end
-- Scopes are a JSON list of strings; a quoted exact match cannot hit a longer scope name.
if not string.find(e[11], '"' .. ARGV[11] .. '"', 1, true) then
  local limited = ip_spent()
  if limited then return limited end
  count(usage, 'refused_scope', usage_ttl)
  return {'scope', tenant}
end

local field = ARGV[3]
local doc = redis.call('HMGET', prefix .. ':flags:' .. tenant .. ':' .. e[2], 'etag', field, 'keys')
if not doc[1] or not doc[3] then return {'miss'} end

-- rl = {allowed, remaining, reset_after_ms, retry_after_ms, ttl_ms, index_due 0|1, index_ttl_ms}
local rl = {1, 0, 0, 0, 0, 0, 0}
if ARGV[7] == '1' then
  rl = rate_limit(e[13], now, e[6], e[7], ARGV[8], 1)
  if rl[1] == 0 then
    count(usage, 'rate_limited', usage_ttl)
    return {'limited', tenant, rl[2], rl[3], rl[4], e[6]}
  end
  if rl[6] == 1 then rate_limit_index(ARGV[9], e[14], e[15], e[16], now, rl[7]) end
end

local quota = tonumber(e[8])
if quota > 0 and tonumber(redis.call('HGET', usage, 'requests') or '0') >= quota then
  count(usage, 'quota_exceeded', usage_ttl)
  return {'quota', tenant, quota}
end
-- Flag keys are stored one per line; a key the document lacks is answered 404 by the caller.
if ARGV[12] ~= '' and not string.find(doc[3], '\n' .. ARGV[12] .. '\n', 1, true) then
  count(usage, 'not_found', usage_ttl)
else
  count(usage, 'requests', usage_ttl)
end

-- Last use is recorded at most once a minute per key, in Redis only: the tenant's hash
-- (key id -> ms) is copied to the database in batches by flush_apikey_last_used. Its
-- lifetime is (re)set when a field is created, not on every update: a hash that expires
-- while in use loses at most the last minute of one key, which its next use restores.
local touch = 0
if now - tonumber(e[9] or '0') >= 60000 then
  redis.call('HSET', KEYS[1], 'lu', now)
  if redis.call('HSET', e[17], e[10], now) == 1 then
    redis.call('EXPIRE', e[17], usage_ttl)
  end
  touch = 1
end
local body = doc[2]
if field == 'body' and ARGV[4] ~= '' and (ARGV[4] == '*' or string.find(ARGV[4], doc[1], 1, true)) then
  body = ''
end
return {'ok', tenant, e[10], e[11], doc[1], body, touch, rl[2], rl[3], rl[4], now, e[6]}
