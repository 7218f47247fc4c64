-- wrk script: POST a GameServerAllocation for the benchmark Fleet, and nothing else: no Lua
-- callback per response, so wrk spends as little CPU per request as it can (bench/alloc.lua
-- also reports latency percentiles).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"apiVersion":"allocation.agones.dev/v1","kind":"GameServerAllocation","spec":{"selectors":[{"matchLabels":{"agones.dev/fleet":"bench"}}]}}'
