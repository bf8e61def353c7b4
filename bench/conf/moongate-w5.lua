-- W5 WAF rule set: a web ACL of six Lua rules (waf/bench_waf.lua, the same code the
-- other gateways run) that a clean request passes, then the W1 proxy.
-- run.sh copies waf/ to <prefix>/policies/bench/.
local function rule(priority, check)
  return { name = check, priority = priority, policy = "policies/bench/rule.lua", action = "block",
           config = { check = check } }
end

return {
  workers = 1,
  listen = { { address = "127.0.0.1", port = 18081, api = "bench" } },
  apis = {
    bench = {
      stages = {
        ["$default"] = {
          waf = {
            default_action = "allow",
            rules = { rule(1, "ip_denied"), rule(2, "method_blocked"), rule(3, "bad_agent"),
                      rule(4, "traversal"), rule(5, "sqli"), rule(6, "xss") },
          },
        },
      },
      routes = {
        ["GET /bench"] = { integration = { type = "http", uri = "http://127.0.0.1:18080/bench" } },
      },
    },
  },
}
