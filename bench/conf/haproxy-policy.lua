-- W2's API-key check for HAProxy: the x-api-key header against a Lua table.
local keys = { ["bench-key-0123456789abcdef"] = "bench" }

core.register_action("check_api_key", { "http-req" }, function(txn)
    local key = txn.sf:req_hdr("x-api-key")
    if key == nil or keys[key] == nil then
        local reply = txn:reply({
            status = 403,
            headers = { ["content-type"] = { "application/json" } },
            body = '{"message":"Forbidden"}',
        })
        txn:done(reply)
    end
end)
