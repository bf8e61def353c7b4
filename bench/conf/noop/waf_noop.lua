-- W5b on moongate: the stage's one WAF rule (action block): matches only requests
-- with the header x-bench-block, which the measured request does not have.
local N = require "bench.bench_noop"

return {
  inspect = function(req)
    return N.blocked(req:header("x-bench-block"))
  end,
}
