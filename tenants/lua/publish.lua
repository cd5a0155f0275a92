-- Publish a tenant's cache version, only ever upwards: drop a document built at an older
-- one (readers compare versions anyway; this frees the memory at once) and add the bump
-- to the tenant's change stream (so a repeated or old delivery adds no event).
-- KEYS: 1 the tenant's published version, 2 its cached document, 3 its change stream
--       (tenants/keys.py, one slot).
-- ARGV: 1 the version, 2 the stream's approximate cap, 3 the stream's lifetime ms.
-- Reply: the version published before.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('SET', KEYS[1], new)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'version', new)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
local built = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
if built < new then redis.call('DEL', KEYS[2]) end
return cur
