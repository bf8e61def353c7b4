-- moongate.testing: the busted kit. Builds requests, log contexts and events in
-- plain Lua and runs a policy's hooks exactly as the gateway does (the same
-- loader, instruction budget, config-schema validation and result rules: see
-- moongate.hooks), with no gateway running.
--
--   local testing = require "moongate.testing"
--   local req = testing.request{ method = "GET", path = "/pets/1",
--                                headers = { ["x-api-key"] = "k1" }, source_ip = "10.0.0.1" }
--   local d = testing.authorize("policies/authorizers/api_key_header.lua",
--                               { keys = { k1 = "alice" } }, req,
--                               { identity_sources = { "$request.header.x-api-key" } })
--   assert.equal(200, d.status); assert.equal("alice", d.context.caller)
--
-- Runners take a policy as a path (relative to the working directory, like
-- busted's) or an already loaded module, its configuration (validated against
-- the policy's schema: an invalid one raises the same message `moongate check`
-- prints), and a request. They return decision tables (see each function).
local policy = require "moongate.policy"
local request = require "moongate.request"
local hooks = require "moongate.hooks"
local events = require "moongate.events"
local http = require "moongate.http"
local connections = require "moongate.connections"

local type, pairs, ipairs, error, tostring, setmetatable = type, pairs, ipairs, error, tostring, setmetatable
local concat = table.concat

local M = {}

-- Steps a hook call may take (the gateway's lua.instruction_budget default).
M.budget = policy.default_budget

local loaded = {}

-- Loads the policy at path as the gateway does (instrumented for the budget, in
-- its own environment); a module table is returned as is.
function M.load(p)
  if type(p) == "table" then
    return p
  end
  if type(p) ~= "string" then
    error("a policy is a file path or a module table", 2)
  end
  local mod = loaded[p]
  if mod == nil then
    local err
    mod, err = policy.load(p, p)
    if not mod then
      error(err, 2)
    end
    loaded[p] = mod
  end
  return mod
end

-- Forgets loaded policies (after a spec rewrote a policy file).
function M.reset()
  loaded = {}
  http.set_transport(nil)
  connections.set_transport(nil)
end

local function call(fn, ...)
  return hooks.call(M.budget, fn, ...)
end

-- Prepared configurations by conf table and module: like the gateway, which
-- validates a configuration once per generation, the kit validates a conf table
-- once (pass a new table after changing one).
local prepared_for = setmetatable({}, { __mode = "k" })
local NO_CONF = {}

-- Validates conf against the policy's schema and runs its prepare(conf), as the
-- configuration loader does; raises the loader's messages when conf is invalid.
function M.config(p, conf, where)
  local mod = M.load(p)
  local by_mod = prepared_for[conf or NO_CONF]
  if by_mod and by_mod[mod] ~= nil then
    return by_mod[mod], mod
  end
  local checked, errs = policy.check_conf(mod, conf, where or "config", "spec",
    type(p) == "string" and p or "the policy")
  if not checked then
    error(concat(errs, "\n"), 3)
  end
  local prepared, err = policy.prepare(mod, checked)
  if prepared == nil then
    error("prepare: " .. tostring(err), 3)
  end
  if type(conf) == "table" or conf == nil then
    by_mod = by_mod or setmetatable({}, { __mode = "k" })
    by_mod[mod] = prepared
    prepared_for[conf or NO_CONF] = by_mod
  end
  return prepared, mod
end

local function use_of(p, conf, hook, extra)
  local prepared, mod = M.config(p, conf)
  if type(mod[hook]) ~= "function" then
    error("the policy has no " .. hook .. " function", 3)
  end
  local use = { mod = mod, conf = prepared }
  for k, v in pairs(extra or {}) do
    use[k] = v
  end
  return use
end

local function check_request(req)
  if not request.is_request(req) then
    error("expected a request object (testing.request{...})", 3)
  end
end

---------------------------------------------------------------------------
-- Builders
---------------------------------------------------------------------------

-- A request object (see moongate.request: request.new for the fields). A request a JWT
-- authorizer allowed takes jwt = { claims = {...}, scopes = {...} }: hooks see the claims
-- as req.authorizer (values as strings, as the gateway gives them), a Lua integration's
-- event as requestContext.authorizer.jwt, and req:context("authorizer.claims.NAME").
function M.request(t)
  return request.new(t)
end

-- A log context: $context values by name ("status", "identity.sourceIp", ...),
-- and `request` (a testing.request) for what they do not say.
function M.context(t)
  t = t or {}
  local req = t.request or request.new({})
  for k, v in pairs(t) do
    if k ~= "request" then
      req._context[k] = tostring(v)
    end
  end
  return hooks.log_context(req)
end

-- The payload format a request's Lua integration gets: opts.payload_format_version,
-- else the API type's default ("1.0" on REST APIs, "2.0" on HTTP APIs).
local function payload_of(req, opts)
  local v = opts and opts.payload_format_version
  if v ~= nil and v ~= "1.0" and v ~= "2.0" then
    error('payload_format_version must be "1.0" or "2.0"', 3)
  end
  return v or (req.api_type == "rest" and "1.0" or "2.0")
end

-- The event of a request, as a Lua integration receives it: payload format 2.0, or 1.0
-- with opts.payload_format_version = "1.0" (the default for a REST API's request); a
-- WebSocket event request's WebSocket event.
function M.event(req, opts)
  check_request(req)
  if payload_of(req, opts) == "1.0" and not req.connection_id then
    return events.v1(req, req.api_type == "rest")
  end
  return hooks.event(req)
end

---------------------------------------------------------------------------
-- WebSocket events
---------------------------------------------------------------------------

-- Builders of the requests a WebSocket API's events are, as the gateway makes them:
-- testing.handle(p, conf, req) runs a Lua integration on one (its handler gets the
-- WebSocket event), testing.event(req) shows the event, and testing.authorize runs the
-- $connect authorizer on a connect request.
--
--   local req = testing.websocket.connect{ headers = { authorization = "t1" },
--                                          query = { room = "7" } }
--   local req = testing.websocket.message{ body = '{"action":"send","text":"hi"}',
--                                          route_key = "send", connection_id = id,
--                                          authorizer = { principalId = "alice" },
--                                          connection_context = { room = "7" } }
--   local req = testing.websocket.disconnect{ status_code = 1001, reason = "going away" }
--
-- Every builder takes connection_id (default testing.websocket.CONNECTION_ID),
-- connected_at (epoch ms), route_key, source_ip, stage, api_id, host, request_id,
-- stage_variables, time (epoch ms) and, for events after $connect, authorizer (what the
-- $connect authorizer returned: { principalId, context keys... }, seen as
-- requestContext.authorizer) and connection_context (what the $connect handler returned
-- as context, seen as requestContext.connectionContext). connect takes headers and query
-- (a table or string) and jwt (what a JWT authorizer on $connect allowed, as for
-- testing.request); message takes body (a string), binary (true: a binary message,
-- which reaches the handler base64-encoded; a body that is not UTF-8 text does too),
-- message_id and user_agent;
-- disconnect takes status_code (default 1000), reason (default "") and user_agent.
M.websocket = { CONNECTION_ID = "kitConnectionId0" }

local function ws_request(t, event_type, route_key, extra)
  t = t or {}
  if type(t) ~= "table" then
    error("expected a table of fields", 3)
  end
  local time = t.time or 1700000000000
  local context = {
    eventType = event_type,
    connectedAt = tostring(t.connected_at or time),
  }
  for k, v in pairs(extra) do
    context[k] = tostring(v)
  end
  if t.user_agent then
    context["identity.userAgent"] = t.user_agent
  end
  local kept
  if t.authorizer ~= nil or t.connection_context ~= nil then
    kept = { authorizer = t.authorizer, context = t.connection_context }
  end
  return request.new({
    method = event_type == "CONNECT" and "GET" or "POST",
    path = t.path or "/",
    headers = t.headers,
    query = t.query,
    body = t.body,
    source_ip = t.source_ip,
    stage = t.stage,
    api_id = t.api_id,
    host = t.host,
    request_id = t.request_id,
    stage_variables = t.stage_variables,
    route_key = t.route_key or route_key,
    time = time,
    connection_id = t.connection_id or M.websocket.CONNECTION_ID,
    kept = kept,
    jwt = event_type == "CONNECT" and t.jwt or nil,
    context = context,
  })
end

-- The $connect request (the upgrade: a GET with headers and query).
function M.websocket.connect(t)
  return ws_request(t, "CONNECT", "$connect", {})
end

-- One message (route_key: the route the selection expression chose; default $default).
function M.websocket.message(t)
  t = t or {}
  if t.body ~= nil and type(t.body) ~= "string" then
    error("message body must be a string", 2)
  end
  local req = ws_request(t, "MESSAGE", "$default", { messageId = t.message_id or "kitMessageId0000" })
  req.message_type = t.binary and "BINARY" or "TEXT"
  return req
end

-- The $disconnect of a connection.
function M.websocket.disconnect(t)
  t = t or {}
  return ws_request(t, "DISCONNECT", "$disconnect", {
    disconnectStatusCode = t.status_code or 1000,
    disconnectReason = t.reason or "",
  })
end

-- Answers moongate.connections calls made by hooks under test, and records them.
-- conns maps the ids of open connections to what info returns for them ({ connectedAt,
-- lastActiveAt, identity = { sourceIp, userAgent } }, or true for made-up values), or is
-- a function(call) that answers each call ({ op = "send" | "info" | "close", id, data,
-- binary }) with what the operation returns. Returns the record: { sent = { { id, data,
-- binary } }, closed = { id, ... }, connections = the map }. Sending to, asking about or
-- closing an id that is not open returns nil, "gone", 410; close removes it.
-- testing.reset() (or mock_connections(nil)) removes the fake.
function M.mock_connections(conns)
  if conns == nil then
    connections.set_transport(nil)
    return nil
  end
  local record = { sent = {}, closed = {} }
  local answer = type(conns) == "function" and conns or nil
  local open = not answer and conns or nil
  if not answer and type(open) ~= "table" then
    error("mock_connections takes a table of open connections or a function", 2)
  end
  record.connections = open
  connections.set_transport(function(call)
    if call.op == "send" then
      record.sent[#record.sent + 1] = { id = call.id, data = call.data, binary = call.binary }
    elseif call.op == "close" then
      record.closed[#record.closed + 1] = call.id
    end
    if answer then
      return answer(call)
    end
    local c = open[call.id]
    if not c then
      return nil, "gone", 410
    end
    if call.op == "info" then
      if c == true then
        return { connectedAt = "2023-11-14T22:13:20.000Z", lastActiveAt = "2023-11-14T22:13:20.000Z",
                 identity = { sourceIp = "127.0.0.1", userAgent = "" } }
      end
      return c
    elseif call.op == "close" then
      open[call.id] = nil
    end
    return true
  end)
  return record
end

---------------------------------------------------------------------------
-- Runners
---------------------------------------------------------------------------

-- Runs an authorizer: { outcome = "allow" | "unauthorized" | "deny" | "error",
-- status = 200 | 401 | 403 | 500, context, principal_id, usage_identifier_key,
-- error }. opts: kind ("REQUEST" | "TOKEN"), identity_sources (default none;
-- TOKEN: { "$request.header.Authorization" }), token_pattern, scopes,
-- payload_format_version (REQUEST: the shape of auth:event(), "1.0" or "2.0"; default
-- "1.0" for a REST API's request, else "2.0"). On allow,
-- req.authorizer holds the context, as for later hooks in the gateway.
function M.authorize(p, conf, req, opts)
  check_request(req)
  opts = opts or {}
  local kind = opts.kind or "REQUEST"
  local use = use_of(p, conf, "authorize", {
    kind = kind,
    identity_sources = opts.identity_sources
      or (kind == "TOKEN" and { "$request.header.Authorization" } or {}),
    token_pattern = opts.token_pattern,
    scopes = opts.scopes,
    payload_format_version = not req.connection_id and payload_of(req, opts) or nil,
    rest = req.api_type == "rest" or nil,
  })
  local d = hooks.authorize(use, req, call)
  if d.outcome == "allow" then
    req.authorizer = d.context
    if d.principal_id ~= nil then -- as $context.authorizer.principalId says in the gateway
      req._context["authorizer.principalId"] = d.principal_id
    end
    if req.connection_id then
      -- a WebSocket $connect: its events show { principalId, context keys... }, as the
      -- gateway keeps it for the connection's later events
      local a = {}
      for k, v in pairs(d.context) do
        a[k] = v
      end
      a.principalId = d.principal_id
      req._kept = req._kept or {}
      req._kept.authorizer = a
    end
  end
  d.result = nil
  return d
end

-- Runs one WAF rule's inspect: { match = true | false } or { status = 500, error }.
function M.inspect(p, conf, req)
  check_request(req)
  local use = use_of(p, conf, "inspect")
  local ok, v = call(use.mod.inspect, req, use.conf)
  if not ok then
    return { status = 500, error = v.message }
  end
  return { match = v and true or false }
end

local function by_priority(a, b)
  return a.priority < b.priority
end

-- Runs a web ACL: rules = list of { policy, config, action, name, priority } (in
-- any order), default_action "allow" | "block". Returns { action = "ALLOW" |
-- "BLOCK", status = 200 | 403 | 500, rule, counted, error }.
function M.waf(rules, req, default_action)
  check_request(req)
  local list = {}
  for i, r in ipairs(rules) do
    local use
    if r.statement or r.managed then
      -- evaluated in C by the gateway only: its inspect answers the rule's error
      local waf = require "moongate.waf"
      use = { mod = r.statement and waf.statement or waf.managed, conf = r }
    else
      use = use_of(r.policy, r.config, "inspect")
    end
    list[i] = {
      mod = use.mod, conf = use.conf, action = r.action or "block",
      name = r.name or (type(r.policy) == "string" and r.policy:match("([^/]+)%.lua$")) or ("rule" .. i),
      priority = r.priority or i,
    }
  end
  table.sort(list, by_priority)
  return hooks.waf({ rules = list, default_action = default_action or "allow" }, req, call)
end

-- Runs a route selector: { route_key } (the route that serves the request), or
-- { declined = true } (the route keys decide), or { status = 404 | 500, error }.
-- routes: the API's route keys (a list); without it any returned key is taken.
-- Runs a revocation policy's check(cert, conf) as the gateway does at a TLS handshake.
-- cert: { subjectDN, issuerDN, serialNumber, validity = { notBefore, notAfter },
-- clientCertPem, fingerprint }. Returns { outcome = "allow" | "deny" | "error", ... }.
function M.check_cert(p, conf, cert)
  return hooks.check_cert(use_of(p, conf, "check"), cert, call)
end

function M.select_route(p, conf, req, routes)
  check_request(req)
  local set
  if routes then
    set = {}
    for i, k in ipairs(routes) do
      set[k] = i - 1
    end
  end
  return hooks.select_route(use_of(p, conf, "select_route", { routes = set }), req, call)
end

-- Runs a Lua integration on a request (its event is built as the gateway builds
-- it) or on an event table: { status, headers = { name = value } (repeated names
-- joined with ", "), header_list = { { name, value } }, body, connection_context (a
-- WebSocket $connect: the context the handler returned for later events) } or
-- { status = 500, error } (a REST API's: 502). opts.payload_format_version "1.0" runs it
-- with the 1.0 event and response shape (default: "1.0" for a REST API's request, "2.0"
-- otherwise; an event table with httpMethod and without version = "2.0" is taken as 1.0).
function M.handle(p, conf, req_or_event, opts)
  local use = use_of(p, conf, "handle")
  local resp
  if request.is_request(req_or_event) then
    local req = req_or_event
    if not req.connection_id then
      use.payload_format_version = payload_of(req, opts)
      use.rest = req.api_type == "rest" or nil
    end
    req._frozen = true
    resp = hooks.handle(use, req, call)
    req._frozen = nil
  elseif type(req_or_event) == "table" and (opts and opts.payload_format_version == "1.0"
      or (req_or_event.httpMethod ~= nil and req_or_event.version ~= "2.0")) then
    -- a 1.0 event: a REST API's unless it says version = "1.0" (HTTP APIs' 1.0 events do)
    local status = req_or_event.version == nil and 502 or 500
    local ok, v = call(use.mod.handle, req_or_event, use.conf)
    if not ok then
      resp = { status = status, error = v.message }
    else
      local why
      resp, why = events.response_v1(v)
      resp = resp or { status = status, error = "malformed handler result: " .. why }
    end
  else
    local ok, v = call(use.mod.handle, req_or_event, use.conf)
    if not ok then
      resp = { status = 500, error = v.message }
    else
      local r, why = hooks.response(v)
      resp = r and hooks.connect_result(req_or_event, v, r)
        or { status = 500, error = "malformed handler result: " .. why }
    end
  end
  if resp.error then
    return { status = resp.status, error = resp.error }
  end
  local map = {}
  for _, h in ipairs(resp.headers) do
    map[h[1]] = map[h[1]] and (map[h[1]] .. ", " .. h[2]) or h[2]
  end
  return { status = resp.status, headers = map, header_list = resp.headers, body = resp.body,
           connection_context = resp.connection_context }
end

-- Runs a log policy with a context (testing.context{...}): { line } or { custom }
-- or {} (nothing), or { error }.
function M.log(p, conf, ctx)
  if type(ctx) ~= "table" or ctx.request == nil then
    error("expected a log context (testing.context{...})", 2)
  end
  local use = use_of(p, conf, "log")
  ctx.request._frozen = true
  local d = hooks.log(use, ctx.request, call)
  ctx.request._frozen = nil
  if d.error then
    d.status = 500
  end
  return d
end

-- Answers moongate.http calls made by hooks under test: fn(req) gets
-- { method, url, headers, body, timeout } and returns { status, headers, body }
-- or nil, "error". A table maps URLs to responses. nil restores "no transport".
function M.mock_http(fn)
  if type(fn) == "table" then
    local map = fn
    fn = function(req)
      local res = map[req.url]
      if res == nil then
        return nil, "connect to " .. req.url .. " failed: connection refused"
      end
      return { status = res.status or 200, headers = res.headers or {}, body = res.body or "" }
    end
  end
  http.set_transport(fn)
end

---------------------------------------------------------------------------
-- Non-proxy http integrations (moongate.mapping)
---------------------------------------------------------------------------

-- Runs a transform policy's transform(body, ctx, conf) as the gateway does (budget,
-- result rules): { body, content_type } or { error }. ctx: what the gateway passes
-- (see docs: request side { method, path, headers, query, ... }, response side
-- { status, headers, method_status, request }).
function M.transform(p, conf, body, ctx)
  local mapping = require "moongate.mapping"
  local use = use_of(p, conf, "transform")
  local out, err = mapping.transform(use, body, ctx or {}, call)
  if out == nil then
    return { error = err.message }
  end
  return { body = out, content_type = err }
end

-- Runs a non-proxy http integration on a request: integration is the route's
-- integration table as written in the configuration (proxy = false; validated as the
-- gateway validates it, raising its messages), the backend is testing.mock_http's.
-- Returns { status, headers = { name = value }, header_list, body, backend_status } or
-- { status = 500 | 502 | 504, error }.
function M.http_integration(integration, req)
  check_request(req)
  local lang = require "moongate.config.lang"
  local schema = require "moongate.config.schema"
  local mapping_conf = require "moongate.config.mapping"
  local mapping = require "moongate.mapping"
  local node = schema.fields.apis.values.fields.routes.values.fields.integration.variants.http
  local ctx = { source = "spec", prefix = ".", errs = {}, raw = {} }
  local checked = lang.walk(node, integration, "integration", ctx)
  if #ctx.errs > 0 or checked == nil then
    error(concat(ctx.errs, "\n"), 2)
  end
  if checked.proxy ~= false then
    error("integration: testing.http_integration runs non-proxy integrations (proxy = false)", 2)
  end
  local use = mapping_conf.use(checked, "integration", function(entry)
    return entry
  end, ".")
  local function bind(t)
    if t then
      t.mod = t.policy.mod
      t.conf = policy.prepare(t.mod, t.conf)
    end
  end
  bind(use.request_transform)
  for _, resp in ipairs(use.responses) do
    bind(resp.transform)
  end
  local perr = mapping.prepare(use)
  if perr then
    error(perr, 2)
  end
  local resp = mapping.run(use, req, call)
  if resp.gateway then -- a gateway response (a request template's 415), as the gateway answers it
    local msg = resp.gateway == "UNSUPPORTED_MEDIA_TYPE" and "Unsupported Media Type" or resp.gateway
    return { status = 415, error = resp.gateway, headers = { ["content-type"] = "application/json" },
      body = '{"message":' .. require("moongate.jsonpath").quote(msg) .. "}", gateway_response = resp.gateway }
  end
  if resp.error then
    local status = resp.failure == "timeout" and 504 or resp.failure == "failure" and 502 or 500
    return { status = status, error = (resp.where and (resp.where .. ": ") or "") .. resp.error }
  end
  local map = {}
  for _, h in ipairs(resp.headers) do
    map[h[1]] = h[2]
  end
  return { status = resp.status, headers = map, header_list = resp.headers, body = resp.body,
           backend_status = resp.backend_status }
end

---------------------------------------------------------------------------
-- Mapping templates (moongate.vtl)
---------------------------------------------------------------------------

local compiled_templates = {} -- template text -> compiled, as a generation keeps them

-- Renders a Velocity mapping template as the gateway does (the same compiler, $input,
-- $util, $context, budget). template: the text, or { file = "templates/x.vtl" } (relative
-- to the working directory). input: a request (testing.request{...}: its body, headers,
-- query string, path parameters, $context and stage variables), or a table { body,
-- headers, query = { name = value }, path = { name = value }, context = { ["identity.sourceIp"]
-- = "..." } or nested tables, stage_variables }. Returns the rendered text and the
-- overrides ({ response = { status, header = {} }, request = { header, querystring, path } }),
-- or nil and the runtime error ("line L, column C: ..."); a template that does not compile
-- raises its error, as the configuration check reports it.
function M.vtl(template, input)
  local vtl = require "moongate.vtl"
  local mapping = require "moongate.mapping"
  local text = template
  if type(template) == "table" and type(template.file) == "string" then
    local err
    text, err = policy.read_file(template.file)
    if not text then
      error("cannot read " .. template.file .. ": " .. tostring(err), 2)
    end
  elseif type(template) ~= "string" then
    error('a template is its text or { file = "path" }', 2)
  end
  local tpl = compiled_templates[text]
  if not tpl then
    local err
    tpl, err = vtl.compile(text, type(template) == "table" and template.file or "template")
    if not tpl then
      error(err, 2)
    end
    compiled_templates[text] = tpl
  end
  input = input or {}
  local vin
  if request.is_request(input) then
    vin = mapping.template_input(input, input:body())
  else
    local headers = {}
    for k, v in pairs(input.headers or {}) do
      headers[k:lower()] = v
    end
    vin = { body = input.body or "", params = { path = input.path or {}, querystring = input.query or {},
      header = headers }, context = input.context or {}, stage_variables = input.stage_variables or {} }
  end
  local ok, out, over = call(vtl.render, tpl, vin)
  if not ok then
    return nil, out.message
  end
  return out, over
end

return M
