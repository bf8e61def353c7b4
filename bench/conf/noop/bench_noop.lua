-- W5b's no-op hooks: the same three functions for the three gateways, each fed the
-- gateway's own view of the request (one header value, or nothing). moongate calls
-- them from the policies waf_noop.lua, authorizer_noop.lua and log_noop.lua; nginx-lua
-- from access_by_lua_block / log_by_lua_block (conf/nginx-w5b.conf); HAProxy from
-- Lua actions (conf/haproxy-noop.lua). Plain Lua, as bench_waf.lua. run.sh copies
-- this directory to <run>/policies/bench/, which is on each gateway's module path.
local M = {}

-- The WAF rule: matches (the request is blocked) when x-bench-block is present.
function M.blocked(x_bench_block)
  return x_bench_block ~= nil
end

-- The authorizer: allows unless x-bench-deny is present.
function M.allowed(x_bench_deny)
  return x_bench_deny == nil
end

-- The log hook: nothing to add (moongate then writes its format line).
function M.log()
  return nil
end

return M
