-- W5's web ACL for HAProxy: the checks of bench_waf.lua on the request.
local waf = require "bench.bench_waf"

core.register_action("waf", { "http-req" }, function(txn)
    local f = txn.sf
    if waf.check(f:src(), f:method(), f:path(), f:query(), f:req_hdr("user-agent")) then
        txn:done(txn:reply({
            status = 403,
            headers = { ["content-type"] = { "application/json" } },
            body = '{"message":"Forbidden"}',
        }))
    end
end)
