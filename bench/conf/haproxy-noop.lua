-- W5b's no-op hooks for HAProxy: the functions of bench_noop.lua in three Lua
-- actions, two on the request (the WAF rule's and the authorizer's) and one on the
-- response (the log hook's: HAProxy has no Lua hook in its log phase).
-- The headers are read with txn.f (nil when absent), not txn.sf ("" when absent).
local noop = require "bench.bench_noop"

local function forbidden(txn)
    txn:done(txn:reply({
        status = 403,
        headers = { ["content-type"] = { "application/json" } },
        body = '{"message":"Forbidden"}',
    }))
end

core.register_action("noop_waf", { "http-req" }, function(txn)
    if noop.blocked(txn.f:req_hdr("x-bench-block")) then
        forbidden(txn)
    end
end)

core.register_action("noop_authorize", { "http-req" }, function(txn)
    if not noop.allowed(txn.f:req_hdr("x-bench-deny")) then
        forbidden(txn)
    end
end)

core.register_action("noop_log", { "http-res" }, function()
    noop.log()
end)
