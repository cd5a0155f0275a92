-- wrk script: GET the URL with a different API key on every request, cycling through the
-- keys in BENCH_KEYS_FILE (one secret per line). Each wrk thread starts at its own offset
-- so the threads together walk the whole list instead of all using its first keys.
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
    position = math.floor((offset or 0) * #keys / 2)
  end
  position = position % #keys + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. keys[position]})
end
