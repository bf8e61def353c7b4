-- Lua integration: answers with the request as the gateway sees it, as JSON (the
-- payload format 2.0 event without the body's base64 wrapping). Handy to check
-- what authorizers, WAF rules and route selectors did to a request.
--
--   ["ANY /echo/{proxy+}"] = { integration = { type = "lua", handler = "policies/examples/echo.lua" } }
local hooks = require "moongate.hooks"

local M = {}

M.schema = {
  type = "record",
  fields = {
    status = { type = "integer", between = { 100, 599 }, default = 200, description = "response status" },
  },
}

-- What the echo contains for an event.
function M.summary(event)
  local rc = event.requestContext or {}
  local http = rc.http or {}
  return {
    method = http.method,
    path = event.rawPath,
    query = event.queryStringParameters,
    headers = event.headers,
    cookies = event.cookies,
    pathParameters = event.pathParameters,
    stageVariables = event.stageVariables,
    routeKey = event.routeKey,
    stage = rc.stage,
    requestId = rc.requestId,
    sourceIp = http.sourceIp,
    authorizer = rc.authorizer and rc.authorizer.lambda,
    body = event.body,
    isBase64Encoded = event.isBase64Encoded,
  }
end

function M.handle(event, conf)
  return {
    statusCode = conf.status,
    headers = { ["content-type"] = "application/json" },
    body = hooks.json_encode(M.summary(event)),
  }
end

return M
