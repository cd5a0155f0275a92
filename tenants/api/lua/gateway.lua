-- The service API's one round trip: authenticate the API key from its cached entry,
-- check the tenant serves and the key holds the route's scope, apply the tenant rate
-- limit and daily quota, count usage, and return the cached bootstrap body (or flag rules).
--
-- Who pays for a request: a valid key with the scope spends its tenant's plan limit
-- (never the client address's, so tenants behind one egress address do not share an
-- allowance). A refusal is returned to the caller, which spends the client address's
-- `ip` budget through the limiter (that budget lives in another slot). Only a request
-- that will be served counts as usage (`requests`, which the daily quota reads);
-- refusals count under their own metric.
--
-- `rate_limit` and `rate_limit_index` are defined above this text: the loader prepends
-- resilience/ratelimit/lua/rate_limit.lua, unchanged.
--
-- Every key comes in KEYS, all in the tenant's slot {t:<slug>} (tenants/keys.py):
-- KEYS[1] API-key entry, 2 published version, 3 document, 4 today's usage,
--      5 the tenant's limiter state, 6 the limiter index of the tenant's slot,
--      7 the tenant's last-use hash (key id -> ms, copied to the database by flush_apikey_last_used),
--      8 today's asked-flags hash (field -> count, copied to the database by flush_flag_asks)
-- ARGV 1 now_ms ('' = Redis TIME: one clock for every replica), 2 document field to
--      return (body|rules), 3 If-None-Match, 4 usage ttl s, 5 rate limiting on (1|0),
--      6 window ms, 7 fill: 0 none, 1 entry and document, 8 scope the route needs,
--      9 flag key the request asks for ('' = the whole document; a key the document
--      lacks is answered 404 and not counted as usage), 10 the tenant's limiter index member,
--      11 the asked-flags field a served request increments ('' = none)
-- fill=1   12 ttl s, 13 version, 14 body, 15 etag, 16 rules, 17 flag keys, 18.. entry pairs
local function count(metric, ttl)
  -- The day's hash gets its lifetime when a metric first appears, not on every call.
  if redis.call('HINCRBY', KEYS[4], metric, 1) == 1 then
    redis.call('EXPIRE', KEYS[4], ttl)
  end
end

local now = tonumber(ARGV[1])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

if ARGV[7] == '1' then
  local ttl = tonumber(ARGV[12])
  local version = tonumber(ARGV[13])
  local published = tonumber(redis.call('GET', KEYS[2]) or '0')
  -- A newer version is already published: this fill read the database before a commit.
  if version < published then return {'stale'} end
  if version > published then redis.call('SET', KEYS[2], version) end
  redis.call('HSET', KEYS[3], 'ver', version, 'body', ARGV[14], 'etag', ARGV[15], 'rules', ARGV[16], 'keys', ARGV[17])
  redis.call('EXPIRE', KEYS[3], ttl)
  local fields = {}
  for i = 18, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('EXPIRE', KEYS[1], ttl)
end

local e = redis.call('HMGET', KEYS[1], 'tenant', 'ver', 'exp', 'serving', 'status', 'limit', 'burst', 'quota',
  'lu', 'key_id', 'scopes')
-- Unknown to the cache: the caller asks the database.
if not e[1] then return {'miss'} end
local tenant = e[1]
-- The entry was built for one cache version; any committed write publishes a newer one.
if redis.call('GET', KEYS[2]) ~= e[2] then return {'miss'} end
local exp = tonumber(e[3])
if exp > 0 and now >= exp then return {'expired'} end

local usage_ttl = tonumber(ARGV[4])
if e[4] ~= '1' then
  count('refused_not_serving', usage_ttl)
  return {'not_serving', e[5], tenant}
end
-- Scopes are a JSON list of strings; a quoted exact match cannot hit a longer scope name.
if not string.find(e[11], '"' .. ARGV[8] .. '"', 1, true) then
  count('refused_scope', usage_ttl)
  return {'scope', tenant}
end

local field = ARGV[2]
local doc = redis.call('HMGET', KEYS[3], 'ver', 'etag', field, 'keys')
if doc[1] ~= e[2] or not doc[2] or not doc[4] then return {'miss'} end

-- rl = {allowed, remaining, reset_after_ms, retry_after_ms, ttl_ms, index_due 0|1, index_ttl_ms}
local rl = {1, 0, 0, 0, 0, 0, 0}
if ARGV[5] == '1' then
  rl = rate_limit(KEYS[5], now, e[6], e[7], ARGV[6], 1)
  if rl[1] == 0 then
    count('rate_limited', usage_ttl)
    return {'limited', tenant, rl[2], rl[3], rl[4], e[6]}
  end
  if rl[6] == 1 then rate_limit_index(KEYS[6], ARGV[10], now, rl[7]) end
end

local quota = tonumber(e[8])
if quota > 0 and tonumber(redis.call('HGET', KEYS[4], 'requests') or '0') >= quota then
  count('quota_exceeded', usage_ttl)
  return {'quota', tenant, quota}
end
-- Flag keys are stored one per line; a key the document lacks is answered 404 by the caller.
if ARGV[9] ~= '' and not string.find(doc[4], '\n' .. ARGV[9] .. '\n', 1, true) then
  count('not_found', usage_ttl)
else
  count('requests', usage_ttl)
  -- Which flags were asked for (the stale-flag report): one field per request, named by the caller.
  if ARGV[11] ~= '' and redis.call('HINCRBY', KEYS[8], ARGV[11], 1) == 1 then
    redis.call('EXPIRE', KEYS[8], usage_ttl)
  end
end

-- Last use is recorded at most once a minute per key, in Redis only: the tenant's hash
-- (key id -> ms) is copied to the database in batches by flush_apikey_last_used. Its
-- lifetime is (re)set when a field is created, not on every update: a hash that expires
-- while in use loses at most the last minute of one key, which its next use restores.
local touch = 0
if now - tonumber(e[9] or '0') >= 60000 then
  redis.call('HSET', KEYS[1], 'lu', now)
  if redis.call('HSET', KEYS[7], e[10], now) == 1 then
    redis.call('EXPIRE', KEYS[7], usage_ttl)
  end
  touch = 1
end
local body = doc[3]
if field == 'body' and ARGV[3] ~= '' and (ARGV[3] == '*' or string.find(ARGV[3], doc[2], 1, true)) then
  body = ''
end
return {'ok', tenant, e[10], e[11], doc[2], body, touch, rl[2], rl[3], rl[4], now, e[6]}
