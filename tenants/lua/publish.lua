-- Publish a tenant's cache version, only ever upwards, and drop a document built at an
-- older one (readers compare versions anyway; this frees the memory at once).
-- KEYS: 1 the tenant's published version, 2 its cached document (tenants/keys.py, one slot).
-- ARGV: 1 the version. Reply: the version published before.
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = tonumber(ARGV[1])
if new > cur then redis.call('SET', KEYS[1], new) end
local built = tonumber(redis.call('HGET', KEYS[2], 'ver') or '0')
if built < new then redis.call('DEL', KEYS[2]) end
return cur
