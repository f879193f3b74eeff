-- wrk script of the bench harness (bench/wrk.py).
-- Method and body come from the environment (BENCH_WRK_METHOD, BENCH_WRK_BODY); headers
-- come from wrk's -H flags. done() prints one machine-readable line for the harness.

local method = os.getenv("BENCH_WRK_METHOD")
if method and method ~= "" then
  wrk.method = method
end
local body = os.getenv("BENCH_WRK_BODY")
if body and body ~= "" then
  wrk.body = body
end

-- BENCH_WRK_PATHS: requests sent in turn, separated by commas, each a path optionally
-- followed by a space and a bearer token (one conversation of one user each, say).
local paths = os.getenv("BENCH_WRK_PATHS")
if paths and paths ~= "" then
  local list = {}
  for entry in string.gmatch(paths, "[^,]+") do
    local path, token = string.match(entry, "^(%S+) (%S+)$")
    if path then
      local headers = {}
      for name, value in pairs(wrk.headers) do
        headers[name] = value
      end
      headers["Authorization"] = "Bearer " .. token
      table.insert(list, {path, headers})
    else
      table.insert(list, {entry, nil})
    end
  end
  local turn = 0
  request = function()
    turn = turn + 1
    local chosen = list[(turn % #list) + 1]
    return wrk.format(nil, chosen[1], chosen[2])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx_3xx":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end
