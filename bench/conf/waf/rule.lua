-- W5 on moongate: one WAF rule per check of bench_waf.lua (config.check names it).
local W = require "bench.bench_waf"

local M = {}

local CHECKS = {
  ip_denied = function(req)
    return W.ip_denied(req.source_ip)
  end,
  method_blocked = function(req)
    return W.method_blocked(req.method)
  end,
  bad_agent = function(req)
    return W.bad_agent(req:header("user-agent"))
  end,
  traversal = function(req)
    return W.traversal(req.path)
  end,
  sqli = function(req)
    return W.sqli(req.query_string)
  end,
  xss = function(req)
    return W.xss(req.query_string)
  end,
}

M.schema = {
  type = "record",
  fields = {
    check = {
      type = "string", required = true, description = "the check of bench_waf.lua",
      one_of = { "ip_denied", "method_blocked", "bad_agent", "traversal", "sqli", "xss" },
    },
  },
}

function M.prepare(conf)
  return { inspect = CHECKS[conf.check] }
end

function M.inspect(req, conf)
  return conf.inspect(req)
end

return M
