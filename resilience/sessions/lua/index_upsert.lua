-- Add or refresh one session in a user's index, drop expired members, and let the key
-- expire with its last session.
-- KEYS: 1 the user's session index (resilience/sessions/keys.py).
-- ARGV: 1 session key, 2 its expiry (epoch ms), 3 now (epoch ms).
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(last[2])))
end
return 1
