-- W5b on moongate: the route's Lua authorizer (REQUEST, ttl = 0: no cache, so it runs
-- for every request): allows unless the request has the header x-bench-deny.
local N = require "bench.bench_noop"

local ALLOW, DENY = { isAuthorized = true }, { isAuthorized = false }

return {
  authorize = function(req)
    return N.allowed(req:header("x-bench-deny")) and ALLOW or DENY
  end,
}
