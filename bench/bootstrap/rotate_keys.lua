-- wrk script: GET the URL with a different API key on every request, cycling through the
-- keys in BENCH_KEYS_FILE (one secret per line). Each of wrk's two threads starts at its
-- own half of the list, shifted by BENCH_KEYS_START, so that successive runs continue the
-- rotation where the previous one stopped instead of reusing its first keys.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS_FILE")) do
  if line ~= "" then keys[#keys + 1] = line end
end

local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local position = nil
function request()
  if position == nil then
    -- `offset` (set by setup) is the thread's number: spread the starting points over the list.
    position = math.floor((offset or 0) * #keys / 2) + tonumber(os.getenv("BENCH_KEYS_START") or "0")
  end
  position = position % #keys + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. keys[position]})
end
