-- wrk script: POST a GameServerAllocation for the benchmark Fleet; counts the answers whose
-- state is Allocated (every GSA answer is 201, UnAllocated too) and prints latency percentiles.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"apiVersion":"allocation.agones.dev/v1","kind":"GameServerAllocation","spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"bench"}}]}}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

allocated = 0
response = function(status, headers, body)
  if body and string.find(body, '"state":"Allocated"', 1, true) then
    allocated = allocated + 1
  end
end

done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("allocated") or 0)
  end
  io.write(string.format("Allocated: %d (%.0f/s) of %d requests\n", n,
    n / (summary.duration / 1e6), summary.requests))
  io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
