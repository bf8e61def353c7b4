-- Lua integration for payload format 1.0 (REST APIs, or an HTTP API route with
-- payload_format_version = "1.0"): answers with the event it got, as JSON, and shows
-- the 1.0 response shape (headers and multiValueHeaders).
--
--   ["ANY /echo/{proxy+}"] = { integration = { type = "lua", handler = "policies/examples/echo_v1.lua",
--                                              payload_format_version = "1.0" } }
local hooks = require "moongate.hooks"

local M = {}

M.schema = {
  type = "record",
  fields = {
    status = { type = "integer", between = { 100, 599 }, default = 200, description = "response status" },
    cookies = {
      type = "list", default = {}, description = "Set-Cookie values the response carries (multiValueHeaders)",
      elements = { type = "string", description = "a Set-Cookie value" },
    },
  },
}

function M.handle(event, conf)
  local multi
  if #conf.cookies > 0 then
    multi = { ["Set-Cookie"] = conf.cookies }
  end
  return {
    statusCode = conf.status,
    headers = { ["Content-Type"] = "application/json" },
    multiValueHeaders = multi,
    body = hooks.json_encode(event),
    isBase64Encoded = false,
  }
end

return M
