-- moongate.events: what Lua integrations and Lua authorizers receive, and what an
-- integration answers with, in the shapes of Amazon API Gateway's Lambda proxy
-- integrations:
--
--   events.event(req)               payload format 2.0 (HTTP APIs), or the WebSocket event
--                                   of a WebSocket API's event request
--   events.v1(req, rest, no_body)   payload format 1.0 (REST APIs; HTTP APIs that choose it)
--   events.authorizer(auth)         a Lua REQUEST/TOKEN authorizer's event (auth.payload:
--                                   "1.0" or "2.0")
--   events.response(v)              a 2.0 handler result -> { status, headers, body }
--   events.response_v1(v)           a 1.0 handler result -> { status, headers, body }
--
-- moongate.hooks runs the hooks with these, for the gateway (moongate.runtime) and the
-- busted kit (moongate.testing) alike. Everything here runs on the hook path of every
-- request: no loop of this file may leave a hook's trace for good (tests/e2e/jit_spec.lua
-- with MOONGATE_JIT_AUDIT), and nothing here may call a function the JIT does not compile
-- once per request (os.date is called once per second).
local policy = require "moongate.policy"
local request = require "moongate.request"
local cjson = require "cjson.safe"

local type, pairs, ipairs, next, tostring, tonumber, setmetatable, rawget =
  type, pairs, ipairs, next, tostring, tonumber, setmetatable, rawget
local format, find, sub, gsub, match, lower, byte, char =
  string.format, string.find, string.sub, string.gsub, string.match, string.lower,
  string.byte, string.char
local concat, sort = table.concat, table.sort
local floor = math.floor

local M = {}

---------------------------------------------------------------------------
-- Value helpers
---------------------------------------------------------------------------

local num = policy.number_text

-- A context or header value as a string; nil and a reason for other types.
local function scalar(v)
  local t = type(v)
  if t == "string" then
    return v
  elseif t == "number" then
    return num(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local s = cjson.encode(v)
    if s then
      return s
    end
  end
  return nil, "a " .. t
end

M.scalar = scalar

-- JSON without lua-cjson's "\/" escapes (every "/" is escaped, so each "\/" is one).
local function json_encode(v)
  local s = cjson.encode(v)
  return s and (gsub(s, "\\/", "/"))
end
M.json_encode = json_encode

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, 64 do
  B64_INDEX[byte(B64, i)] = i - 1
end

function M.base64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = floor(v / 262144) % 64, floor(v / 4096) % 64
    local c3, c4 = floor(v / 64) % 64, v % 64
    out[#out + 1] = sub(B64, c1 + 1, c1 + 1) .. sub(B64, c2 + 1, c2 + 1)
      .. (b and sub(B64, c3 + 1, c3 + 1) or "=") .. (c and sub(B64, c4 + 1, c4 + 1) or "=")
  end
  return concat(out)
end

function M.base64_decode(s)
  s = gsub(s, "[%s=]", "")
  if find(s, "[^%w%+/]") then
    return nil, "invalid base64"
  end
  local out = {}
  for i = 1, #s, 4 do
    local a, b, c, d = byte(s, i, i + 3)
    local v = B64_INDEX[a] * 262144 + (b and B64_INDEX[b] or 0) * 4096
      + (c and B64_INDEX[c] or 0) * 64 + (d and B64_INDEX[d] or 0)
    local bytes = char(floor(v / 65536) % 256, floor(v / 256) % 256, v % 256)
    out[#out + 1] = sub(bytes, 1, d and 3 or c and 2 or 1)
  end
  return concat(out)
end

-- True when s is text a JSON event can carry as is: valid UTF-8 without NUL. This byte
-- loop is the kit's; the gateway checks in C (set_text_check, from runtime.lua): a loop
-- here is an inner loop of the hook's trace, which LuaJIT then aborts until it
-- blacklists the whole hook path and runs it interpreted (W6 in bench/README).
local function lua_is_text(s)
  local n = #s
  local i = 1
  while i <= n do
    local c = byte(s, i)
    if c == 0 then
      return false
    elseif c >= 0x80 then
      break
    end
    i = i + 1
  end
  if i > n then
    return true
  end
  for j = i, n do
    if byte(s, j) == 0 then
      return false
    end
  end
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or c >= 0xC2 and c < 0xE0 and 2 or c >= 0xE0 and c < 0xF0 and 3
      or c >= 0xF0 and c < 0xF5 and 4 or nil
    if not len then
      return false
    end
    for j = i + 1, i + len - 1 do
      local cc = byte(s, j)
      if not cc or cc < 0x80 or cc > 0xBF then
        return false
      end
    end
    i = i + len
  end
  return true
end

local is_text = lua_is_text

-- Replaces the body text check (fn(s) -> boolean); the gateway's runs in C.
function M.set_text_check(fn)
  is_text = fn
end

---------------------------------------------------------------------------
-- Events (Amazon API Gateway payload format 2.0)
---------------------------------------------------------------------------

local function non_empty(t)
  return next(t) ~= nil and t or nil
end

-- The requestContext of an event.
local function request_context(req)
  local epoch = req:time_epoch()
  local host = req.host
  local rc = {
    accountId = "moongate",
    apiId = req.api_id,
    domainName = host,
    domainPrefix = host and match(host, "^[^.]*") or nil,
    http = {
      method = req.method,
      path = req.raw_path,
      protocol = req.protocol,
      sourceIp = req.source_ip,
      userAgent = req:header("user-agent") or "",
    },
    requestId = req.request_id,
    routeKey = req.route_key or "$default",
    stage = req.stage,
    time = os.date("!%d/%b/%Y:%H:%M:%S +0000", floor(epoch / 1000)),
    timeEpoch = epoch,
  }
  local jwt = req.jwt
  if jwt then -- a JWT authorizer's token, as AWS gives it: claims (strings) and scopes
    rc.authorizer = { jwt = { claims = jwt.claims, scopes = jwt.scopes } }
  elseif req.authorizer then
    rc.authorizer = { lambda = req.authorizer }
  end
  local cert = req.client_cert
  if cert then
    rc.authentication = { clientCert = {
      clientCertPem = cert.pem, subjectDN = cert.subject_dn, issuerDN = cert.issuer_dn,
      serialNumber = cert.serial_number,
      validity = { notBefore = cert.not_before, notAfter = cert.not_after },
    } }
  end
  return rc
end

---------------------------------------------------------------------------
-- WebSocket events (the shape of Amazon API Gateway's Lambda WebSocket event)
---------------------------------------------------------------------------

local connections -- moongate.connections, loaded on the first WebSocket event

-- The values kept for the event's connection: { authorizer, context } (the kit's request
-- carries its own as _kept).
local function kept_values(req, id)
  local k = rawget(req, "_kept")
  if k == nil then
    connections = connections or require("moongate.connections")
    k = connections.kept(id)
  end
  return k
end

local function multi(t)
  if t == nil then
    return nil
  end
  local out = {}
  for k, v in pairs(t) do
    out[k] = { v }
  end
  return out
end

local function number_or_nil(s)
  return s and tonumber(s)
end

-- $context.requestTime of epoch (ms), formatted once per second (os.date is not compiled).
local time_sec, time_text = -1, nil
local function request_time(epoch)
  local sec = floor(epoch / 1000)
  if sec ~= time_sec then
    time_sec, time_text = sec, os.date("!%d/%b/%Y:%H:%M:%S +0000", sec)
  end
  return time_text
end

-- The fields of a WebSocket event other than the message: requestContext,
-- stageVariables and, for $connect, headers and query parameters.
local function ws_event_rest(e, req, id)
  local event_type = req:context("eventType")
  local epoch = req:time_epoch()
  local rc = {
    routeKey = req.route_key or "$default",
    eventType = event_type,
    connectionId = id,
    connectedAt = number_or_nil(req:context("connectedAt")),
    messageDirection = "IN",
    requestId = req.request_id,
    extendedRequestId = req.request_id,
    requestTime = request_time(epoch),
    requestTimeEpoch = epoch,
    stage = req.stage,
    apiId = req.api_id,
    domainName = req.host or req:context("domainName"),
    identity = {
      sourceIp = req.source_ip,
      userAgent = req:context("identity.userAgent") or req:header("user-agent") or "",
    },
  }
  local kept = kept_values(req, id)
  if kept then
    rc.authorizer = kept.authorizer
    rc.connectionContext = kept.context
  end
  if rc.authorizer == nil then -- the $connect's own authorizer
    local jwt = req.jwt
    if jwt then
      rc.authorizer = { jwt = { claims = jwt.claims, scopes = jwt.scopes } }
    elseif req.authorizer then -- (kit)
      rc.authorizer = req.authorizer
    end
  end
  rawset(e, "requestContext", rc)
  rawset(e, "stageVariables", non_empty(req:stage_variables()))
  if event_type == "MESSAGE" then
    rc.messageId = req:context("messageId")
  elseif event_type == "CONNECT" then
    local headers = req:headers()
    local query = non_empty(req:query_params())
    rawset(e, "headers", headers)
    rawset(e, "multiValueHeaders", multi(headers))
    rawset(e, "queryStringParameters", query)
    rawset(e, "multiValueQueryStringParameters", multi(query))
  elseif event_type == "DISCONNECT" then
    rc.disconnectStatusCode = number_or_nil(req:context("disconnectStatusCode"))
    rc.disconnectReason = req:context("disconnectReason") or ""
  end
end

-- A message event's fields other than body and isBase64Encoded are made when one is
-- first read (an echo handler reads only the body: W6 in bench/README). One metatable
-- for all (a new one per event defeats the JIT); the event's request waits in a weak table.
local lazy_req = setmetatable({}, { __mode = "k" })
local LazyEvent = {}
LazyEvent.__index = function(e, k)
  local req = lazy_req[e]
  if req == nil then
    return nil
  end
  lazy_req[e] = nil
  setmetatable(e, nil)
  ws_event_rest(e, req, req.connection_id)
  return rawget(e, k)
end

-- The event of a WebSocket event request (connection id) for a Lua integration.
local function ws_event(req, id)
  local key = req.route_key
  if key == "$connect" or key == "$disconnect" then
    local e = { isBase64Encoded = false }
    ws_event_rest(e, req, id)
    return e
  end
  local body = req:body()
  -- a binary message is base64 even when its bytes happen to be text
  local b64 = req.message_type == "BINARY" or (body ~= "" and not is_text(body))
  local e = setmetatable({ body = b64 and M.base64_encode(body) or body, isBase64Encoded = b64 },
    LazyEvent)
  lazy_req[e] = req
  return e
end

-- The integration event of a request (what a Lua integration's handle() gets): payload
-- format 2.0 for HTTP requests, the WebSocket event for a WebSocket API's events.
function M.event(req)
  local id = req.connection_id
  if id then
    return ws_event(req, id)
  end
  local headers = req:headers()
  headers.cookie = nil -- cookies travel in their own list
  local body = req:body()
  local b64 = body ~= "" and not is_text(body)
  return {
    version = "2.0",
    routeKey = req.route_key or "$default",
    rawPath = req.raw_path,
    rawQueryString = req.query_string or "",
    cookies = non_empty(req:cookies()),
    headers = headers,
    queryStringParameters = non_empty(req:query_params()),
    requestContext = request_context(req),
    body = body ~= "" and (b64 and M.base64_encode(body) or body) or nil,
    pathParameters = non_empty(req:path_params()),
    isBase64Encoded = b64,
    stageVariables = non_empty(req:stage_variables()),
  }
end


---------------------------------------------------------------------------
-- Events (Amazon API Gateway payload format 1.0)
---------------------------------------------------------------------------

-- $context variables the 1.0 event reads that not every build has (a REST API's
-- resourcePath and resourceId): decided once, so that an event never asks for a variable
-- req:context() does not know.
local HAS_CONTEXT = {}
for _, name in ipairs({ "resourcePath", "resourceId", "extendedRequestId", "identity.apiKey",
  "identity.apiKeyId", "authorizer.principalId", "authorizer.latency" }) do
  HAS_CONTEXT[name] = request.is_context_variable(name)
end

local function context_or_nil(req, name)
  if HAS_CONTEXT[name] then
    local v = req:context(name)
    if v ~= nil and v ~= "" then
      return v
    end
  end
  return nil
end

-- Header names are lower case (as HTTP/2 sends them and as the gateway keeps them); a
-- 1.0 handler written for AWS REST APIs, which keep the client's spelling, may still read
-- event.headers["Content-Type"]: a name that is not lower case is looked up in lower case.
-- (JSON encoding sees only the lower-case names.)
local AnyCase = {
  __index = function(t, k)
    if type(k) == "string" then
      local l = lower(k)
      if l ~= k then
        return rawget(t, l)
      end
    end
    return nil
  end,
}

local function any_case(t)
  if t == nil then
    return nil
  end
  return setmetatable(t, AnyCase)
end

-- The 1.0 requestContext.authorizer: a JWT authorizer's { claims, scopes }; a Lua
-- authorizer's context with principalId and integrationLatency, as a REST API's Lambda
-- authorizer shows it.
local function v1_authorizer(req)
  local jwt = req.jwt
  if jwt then
    return { claims = jwt.claims, scopes = jwt.scopes }
  end
  local a = req.authorizer
  if a == nil then
    return nil
  end
  local out = {
    principalId = context_or_nil(req, "authorizer.principalId"),
    integrationLatency = number_or_nil(context_or_nil(req, "authorizer.latency")),
  }
  if next(a) ~= nil then -- most contexts are small; none: no loop
    for k, v in pairs(a) do
      out[k] = v
    end
  end
  return out
end

-- The route's resource: its path template ("/pets/{id}"), or "$default"; a REST API's
-- $context.resourcePath when the build has it.
local function resource_of(req)
  local rp = context_or_nil(req, "resourcePath")
  if rp then
    return rp
  end
  local key = req.route_key or "$default"
  return match(key, "^%S+%s+(/.*)$") or key
end

-- The 1.0 requestContext.
local function v1_request_context(req, epoch, resource)
  local host = req.host
  local request_id = req.request_id
  local rc = {
    accountId = "moongate",
    apiId = req.api_id,
    authorizer = v1_authorizer(req),
    domainName = host,
    domainPrefix = host and match(host, "^[^.]*") or nil,
    extendedRequestId = context_or_nil(req, "extendedRequestId") or request_id,
    httpMethod = req.method,
    identity = {
      sourceIp = req.source_ip,
      userAgent = req:header("user-agent") or "",
      apiKey = context_or_nil(req, "identity.apiKey"),
      apiKeyId = context_or_nil(req, "identity.apiKeyId"),
    },
    path = req.raw_path,
    protocol = req.protocol,
    requestId = request_id,
    requestTime = request_time(epoch),
    requestTimeEpoch = epoch,
    resourceId = context_or_nil(req, "resourceId") or req.route_key or "$default",
    resourcePath = resource,
    stage = req.stage,
  }
  local cert = req.client_cert
  if cert then
    rc.identity.clientCert = {
      clientCertPem = cert.pem, subjectDN = cert.subject_dn, issuerDN = cert.issuer_dn,
      serialNumber = cert.serial_number,
      validity = { notBefore = cert.not_before, notAfter = cert.not_after },
    }
  end
  return rc
end

-- The path of a 1.0 event: what the client sent; on a REST API's default endpoint
-- without the stage (as AWS shows it there), with a custom domain's base path.
local function v1_path(req, rest)
  local raw = req.raw_path
  if rest then
    local stage = req.stage
    local n = stage and #stage + 1 or 0
    if n > 1 and sub(raw, 2, n) == stage and (#raw == n or byte(raw, n + 1) == 47) then -- "/"
      local rest_path = sub(raw, n + 1)
      return rest_path ~= "" and rest_path or "/"
    end
  end
  return raw
end

-- The payload format 1.0 event of an HTTP request: what a REST API's Lambda proxy
-- integration receives (rest true), or an HTTP API's with payload_format_version "1.0"
-- (rest false: with version = "1.0", as AWS sends it there). no_body: an authorizer's
-- event (no body, no isBase64Encoded; the body is not waited for).
function M.v1(req, rest, no_body)
  local headers, multi_headers = req:header_lists()
  local query, multi_query = request.parse_query_lists(req.query_string)
  local epoch = req:time_epoch()
  local resource = resource_of(req)
  local e = {
    version = not rest and "1.0" or nil,
    resource = resource,
    path = v1_path(req, rest),
    httpMethod = req.method,
    headers = any_case(headers),
    multiValueHeaders = any_case(multi_headers),
    queryStringParameters = non_empty(query),
    multiValueQueryStringParameters = non_empty(multi_query),
    pathParameters = non_empty(req:path_params()),
    stageVariables = non_empty(req:stage_variables()),
    requestContext = v1_request_context(req, epoch, resource),
  }
  if not no_body then
    local body = req:body()
    local b64 = body ~= "" and not is_text(body)
    e.body = body ~= "" and (b64 and M.base64_encode(body) or body) or nil
    e.isBase64Encoded = b64
  end
  return e
end

---------------------------------------------------------------------------
-- Authorizer events
---------------------------------------------------------------------------

-- The event of a Lua authorizer (auth: moongate.hooks' authorizer input): TOKEN
-- ({ type, authorizationToken, methodArn }), or REQUEST in the payload format of the
-- authorizer (auth.payload): 2.0 (the integration event with type, routeArn and
-- identitySource, a list), or 1.0 (the 1.0 event without the body, with type and
-- methodArn; on HTTP APIs also identitySource and authorizationToken, the identity
-- sources' values joined with ",", as AWS sends them there).
function M.authorizer(auth)
  if auth.type == "TOKEN" then
    return { type = "TOKEN", authorizationToken = auth.token, methodArn = auth.method_arn }
  end
  if auth.payload == "1.0" then
    local rest = auth.rest
    local e = M.v1(auth.request, rest, true)
    e.type = "REQUEST"
    e.methodArn = auth.method_arn
    if not rest then
      local sources = concat(auth.identity_source, ",")
      e.identitySource, e.authorizationToken = sources, sources
    end
    return e
  end
  local e = M.event(auth.request)
  e.type = "REQUEST"
  e.routeArn = auth.method_arn
  e.identitySource = auth.identity_source
  return e
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

-- Headers the gateway itself sets on a response.
-- The body of a handler's result v (body and isBase64Encoded, the same in both payload
-- formats), with the status and headers already read: the response, or nil and why.
local function response_body(v, status, headers)
  local body = v.body
  if body == nil then
    body = ""
  elseif type(body) ~= "string" then
    return nil, "body must be a string, got " .. type(body)
  end
  if v.isBase64Encoded == true then
    local decoded, why = M.base64_decode(body)
    if not decoded then
      return nil, "body: " .. why
    end
    body = decoded
  elseif v.isBase64Encoded ~= nil and v.isBase64Encoded ~= false then
    return nil, "isBase64Encoded must be a boolean"
  end
  return { status = status, headers = headers, body = body }
end

local OWN_HEADERS = {
  ["content-length"] = true, ["transfer-encoding"] = true, connection = true,
  ["keep-alive"] = true, date = true, ["apigw-requestid"] = true,
  ["x-amzn-requestid"] = true, ["x-amz-apigw-id"] = true, -- a REST API's request ids
}

-- Turns a handler's return value into the response the client gets:
-- { status, headers = list of { name, value }, body }, or nil and why.
function M.response(v)
  if type(v) ~= "table" or v.statusCode == nil then
    -- A plain value: 200 application/json, the value as JSON.
    local body = v == nil and "null" or json_encode(v)
    if body == nil then
      return nil, "the handler's result cannot be encoded as JSON (a " .. type(v) .. ")"
    end
    return { status = 200, headers = { { "content-type", "application/json" } }, body = body }
  end
  local status = v.statusCode
  if type(status) ~= "number" or status ~= floor(status) or status < 100 or status > 599 then
    return nil, "statusCode must be an integer between 100 and 599"
  end
  local headers = {}
  if v.headers ~= nil then
    if type(v.headers) ~= "table" then
      return nil, "headers must be a table"
    end
    local names = {}
    for name in pairs(v.headers) do
      if type(name) ~= "string" or not find(name, "^[!#%$%%&'%*%+%-%.%^_`|~%w]+$") then
        return nil, "header names must be HTTP tokens, got " .. tostring(name)
      end
      names[#names + 1] = name
    end
    sort(names)
    for _, name in ipairs(names) do
      local value, why = scalar(v.headers[name])
      if not value or type(v.headers[name]) == "table" then
        return nil, format("headers[%q] must be a string, got %s", name, why or "a table")
      end
      if find(value, "[%z\r\n]") then
        return nil, format("headers[%q] must not contain CR, LF or NUL", name)
      end
      local lname = lower(name)
      if not OWN_HEADERS[lname] then
        headers[#headers + 1] = { lname, value }
      end
    end
  end
  if v.cookies ~= nil then
    if type(v.cookies) ~= "table" then
      return nil, "cookies must be a list of strings"
    end
    for _, c in ipairs(v.cookies) do
      if type(c) ~= "string" or find(c, "[%z\r\n]") then
        return nil, "cookies must be a list of strings without CR, LF or NUL"
      end
      headers[#headers + 1] = { "set-cookie", c }
    end
  end
  return response_body(v, status, headers)
end


local HEADER_NAME = "^[!#%$%%&'%*%+%-%.%^_`|~%w]+$"

-- The names of a result's headers map, checked and sorted; or nil and why.
local function header_names(t, field)
  if type(t) ~= "table" then
    return nil, field .. " must be a table"
  end
  local names = {}
  for name in pairs(t) do
    if type(name) ~= "string" or not find(name, HEADER_NAME) then
      return nil, "header names must be HTTP tokens, got " .. tostring(name)
    end
    names[#names + 1] = name
  end
  sort(names)
  return names
end

-- One header value of a result as text; or nil and why.
local function header_value(field, name, v)
  local value, why = scalar(v)
  if not value or type(v) == "table" then
    return nil, format("%s[%q] must be a string, got %s", field, name, why or "a table")
  end
  if find(value, "[%z\r\n]") then
    return nil, format("%s[%q] must not contain CR, LF or NUL", field, name)
  end
  return value
end

-- Turns a payload format 1.0 result ({ statusCode, headers, multiValueHeaders, body,
-- isBase64Encoded }) into the response the client gets: { status, headers = list of
-- { name, value }, body }, or nil and why it is malformed. Unlike 2.0 there is no plain
-- value: a result without statusCode is malformed, as on AWS. headers and
-- multiValueHeaders merge; a name in both (compared in lower case) takes only
-- multiValueHeaders' values. Other fields (cookies) are ignored.
function M.response_v1(v)
  if type(v) ~= "table" then
    return nil, "a payload format 1.0 result must be a table with statusCode, got " .. type(v)
  end
  local status = v.statusCode
  if type(status) ~= "number" or status ~= floor(status) or status < 100 or status > 599 then
    return nil, "statusCode must be an integer between 100 and 599"
  end
  local headers = {}
  local mv, multi_names, taken = v.multiValueHeaders, nil, nil
  if mv ~= nil then
    local why
    multi_names, why = header_names(mv, "multiValueHeaders")
    if not multi_names then
      return nil, why
    end
    taken = {}
    for _, name in ipairs(multi_names) do
      taken[lower(name)] = true
    end
  end
  if v.headers ~= nil then
    local names, why = header_names(v.headers, "headers")
    if not names then
      return nil, why
    end
    for _, name in ipairs(names) do
      local value, err = header_value("headers", name, v.headers[name])
      if not value then
        return nil, err
      end
      local lname = lower(name)
      if not OWN_HEADERS[lname] and not (taken and taken[lname]) then
        headers[#headers + 1] = { lname, value }
      end
    end
  end
  if multi_names then
    for _, name in ipairs(multi_names) do
      local list = mv[name]
      if type(list) ~= "table" then
        return nil, format("multiValueHeaders[%q] must be a list of strings", name)
      end
      local lname = lower(name)
      for i = 1, #list do
        local value, err = header_value("multiValueHeaders", name, list[i])
        if not value then
          return nil, err
        end
        if not OWN_HEADERS[lname] then
          headers[#headers + 1] = { lname, value }
        end
      end
    end
  end
  return response_body(v, status, headers)
end

return M
