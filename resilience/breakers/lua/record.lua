-- Record a breaker transition once, whichever process notices it first: every process
-- sharing the breaker notices the change and calls the listener.
-- KEYS: 1 this transition's mark, 2 the transition stream, 3.. marks of transitions to
--       claim as recorded too (resilience/breakers/keys.py: one hash tag).
-- ARGV: 1 mark lifetime s, 2 stream cap, 3.. the entry's field/value pairs.
-- Reply: the entry id, or false when the transition was already recorded.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  for i = 3, #KEYS do
    redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
  end
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
