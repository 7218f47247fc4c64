-- wrk script: POST a GameServerAllocation for the benchmark Fleet.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"apiVersion":"allocation.agones.dev/v1","kind":"GameServerAllocation","spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"bench"}}]}}'

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
