-- moongate.hooks: how each hook kind is called and how its result is read. The
-- runtime (moongate.runtime) and the busted kit (moongate.testing) both run hooks
-- through these functions, so a decision the kit shows is the decision the gateway
-- makes.
--
-- A hook function is called through M.call(budget, fn, ...), which runs it under the
-- instruction budget and turns an error into { message, traceback }. The decision
-- functions take a `use` (what the configuration says about one use of a policy:
-- its module, conf, and kind-specific settings) and the request object. The events
-- integrations and authorizers get, and the response shapes, are moongate.events'.
local policy = require "moongate.policy"
local events = require "moongate.events"

local type, pairs, ipairs, next, tostring, xpcall, setmetatable =
  type, pairs, ipairs, next, tostring, xpcall, setmetatable
local format, find, sub, gsub, match =
  string.format, string.find, string.sub, string.gsub, string.match
local concat = table.concat
local traceback = debug.traceback

local M = {}

---------------------------------------------------------------------------
-- Calling a hook function
---------------------------------------------------------------------------

-- Where a hook error came from: the message and a one-line traceback.
local function on_error(err)
  local msg = type(err) == "string" and err or ("error object: " .. tostring(err))
  if policy.exceeded() and not find(msg, policy.BUDGET_EXCEEDED, 1, true) then
    msg = policy.BUDGET_EXCEEDED .. " (" .. msg .. ")"
  end
  -- the policy's frames: not the budget machinery, the runtime or the C boundary
  local frames = {}
  for line in traceback("", 2):gmatch("[^\n]+") do
    line = gsub(line, "^%s+", "")
    if line ~= "stack traceback:" and not find(line, "^%[C%]") and not find(line, "moongate/%a+%.lua:")
      and not find(line, "__mgw_budget_tick") then
      frames[#frames + 1] = line
    end
  end
  return { message = msg, traceback = concat(frames, " | ") }
end

-- Runs fn(a, b, c) with a budget of n steps. Returns true and fn's first two
-- results (no hook has more), or false and { message, traceback }. Fixed arity on
-- purpose: packing the results in a vararg table here kept the JIT from compiling
-- the gateway's loop over a web ACL's rules (six no-op rules: 4.4 us per request
-- interpreted, 1.6 us compiled).
function M.call(n, fn, a, b, c)
  local saved = policy.set_budget(n)
  local ok, r1, r2 = xpcall(fn, on_error, a, b, c)
  policy.set_budget(saved)
  return ok, r1, r2
end

-- The error text of a failed call, for the error log.
function M.describe(err)
  if type(err) ~= "table" then
    return tostring(err)
  end
  if err.traceback and err.traceback ~= "" then
    return err.message .. "; traceback: " .. err.traceback
  end
  return err.message
end

-- A result that does not have the shape its hook kind requires.
local function malformed(what)
  return { message = what, traceback = "" }
end

---------------------------------------------------------------------------
-- Value helpers
---------------------------------------------------------------------------

-- A context or header value as a string; nil and a reason for other types.
local scalar = events.scalar

-- The context of a result without one (results are never changed: a decision copies).
local NO_CONTEXT = {}

-- An authorizer context table -> sorted list of { key, string value }.
local function context_values(ctx)
  if ctx == nil then
    return NO_CONTEXT
  end
  if type(ctx) ~= "table" then
    return nil, "context must be a table, got " .. type(ctx)
  end
  local out = {}
  if next(ctx) == nil then
    return out
  end
  for k, v in pairs(ctx) do
    if type(k) ~= "string" then
      return nil, "context keys must be strings"
    end
    local s, why = scalar(v)
    if not s then
      return nil, format("context.%s must be a string, number, boolean or table, got %s", k, why)
    end
    out[k] = s
  end
  return out
end

M.base64_encode, M.base64_decode = events.base64_encode, events.base64_decode

-- Replaces the body text check (fn(s) -> boolean); the gateway's runs in C.
M.set_text_check = events.set_text_check

-- The integration event of a request (moongate.events): payload format 2.0 for HTTP
-- requests, the WebSocket event for a WebSocket API's events.
M.event = events.event

---------------------------------------------------------------------------
-- Authorizers
---------------------------------------------------------------------------

-- The route ARN of a request, as in IAM-policy Resource patterns:
-- arn:moongate:execute-api:local:moongate:API/STAGE/METHOD/path
function M.route_arn(req)
  local path = req.route_path or req.path or "/"
  return format("arn:moongate:execute-api:local:moongate:%s/%s/%s/%s", req.api_id or "-",
    req.stage or "$default", req.method or "GET", sub(path, 2))
end

-- The value of one identity source for req, or nil when missing or empty.
function M.identity_source(req, src)
  local kind, name = match(src, "^%$request%.(%a+)%.(.+)$")
  local v
  if kind == "header" then
    v = req:header(name)
  elseif kind == "querystring" then
    v = req:query(name)
  elseif match(src, "^%$context%.") then
    v = req:context(sub(src, 10))
  elseif match(src, "^%$stageVariables%.") then
    v = req:stage_variable(sub(src, 17))
  end
  if v == nil or v == "" then
    return nil
  end
  return v
end

local Auth = {}

-- method_arn and route_arn (the same value) are made when a policy first reads them:
-- most authorizers never do, and the ARN reads four request fields.
Auth.__index = function(self, k)
  if k == "method_arn" or k == "route_arn" then
    local arn = M.route_arn(self.request)
    self.method_arn, self.route_arn = arn, arn
    return arn
  end
  return Auth[k]
end

-- The authorizer's Lambda-style event (moongate.events): TOKEN, or REQUEST in the
-- authorizer's payload format.
function Auth:event()
  return events.authorizer(self)
end

-- What the authorizer's third argument holds, or nil and why the request is
-- unauthorized without running it (a missing identity source, a token that does
-- not match token_pattern). Also returns the cache key.
function M.authorizer_input(use, req)
  local values = {}
  local sources = use.identity_sources
  if sources then
    for i = 1, #sources do
      local v = M.identity_source(req, sources[i])
      if v == nil then
        return nil, "missing identity source " .. sources[i]
      end
      values[i] = v
    end
  end
  local auth = setmetatable({
    type = use.kind or "REQUEST",
    identity_source = values,
    scopes = use.scopes or {},
    request = req,
    payload = use.payload_format_version or "2.0",
    rest = use.rest,
  }, Auth)
  if auth.type == "TOKEN" then
    auth.token = values[1]
    if use.token_pattern and not find(auth.token or "", use.token_pattern) then
      return nil, "the token does not match token_pattern"
    end
  end
  return auth, #values == 1 and values[1] or concat(values, "\0")
end

-- Matches an IAM Resource/Action pattern with * and ? wildcards.
local function glob(pattern, s)
  local p = gsub(pattern, "[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
  p = gsub(gsub(p, "%*", ".*"), "%?", ".")
  return find(s, "^" .. p .. "$") ~= nil
end

local function as_list(v)
  if type(v) == "string" then
    return { v }
  end
  return v
end

-- Evaluates an IAM policy document for arn: "allow", "deny" (explicit) or
-- "implicit" (no statement allows); nil and a reason when malformed.
function M.evaluate_policy(doc, arn)
  if type(doc) ~= "table" then
    return nil, "policyDocument must be a table"
  end
  local statements = doc.Statement
  if type(statements) ~= "table" then
    return nil, "policyDocument.Statement must be a list"
  end
  if statements.Effect ~= nil then
    statements = { statements }
  end
  local allowed = false
  for i, st in ipairs(statements) do
    if type(st) ~= "table" or (st.Effect ~= "Allow" and st.Effect ~= "Deny") then
      return nil, format("policyDocument.Statement[%d].Effect must be \"Allow\" or \"Deny\"", i)
    end
    local actions, resources = as_list(st.Action), as_list(st.Resource)
    if type(actions) ~= "table" or type(resources) ~= "table" then
      return nil, format("policyDocument.Statement[%d] needs Action and Resource", i)
    end
    local action_ok = false
    for _, a in ipairs(actions) do
      if type(a) == "string" and glob(a, "execute-api:Invoke") then
        action_ok = true
      end
    end
    local resource_ok = false
    for _, res in ipairs(resources) do
      if type(res) == "string" and glob(res, arn) then
        resource_ok = true
      end
    end
    if action_ok and resource_ok then
      if st.Effect == "Deny" then
        return "deny"
      end
      allowed = true
    end
  end
  return allowed and "allow" or "implicit"
end

-- Checks an authorizer's return value: returns simple (true: isAuthorized, false: an
-- IAM policy), what (isAuthorized's value, or the policy document), the context ({k =
-- string}), the principal id and the usage identifier key; or nil and why it is
-- malformed.
local function check_result(v)
  if type(v) ~= "table" then
    return nil, "an authorizer must return a table ({isAuthorized = ...} or an IAM policy), got "
      .. type(v)
  end
  local ctx, why = context_values(v.context)
  if not ctx then
    return nil, why
  end
  local key = v.usageIdentifierKey
  if key ~= nil and type(key) ~= "string" then
    return nil, "usageIdentifierKey must be a string"
  end
  local principal = v.principalId
  if principal ~= nil and type(principal) ~= "string" and type(principal) ~= "number" then
    return nil, "principalId must be a string"
  end
  principal = principal and scalar(principal)
  if v.isAuthorized ~= nil then
    if type(v.isAuthorized) ~= "boolean" then
      return nil, "isAuthorized must be a boolean"
    end
    return true, v.isAuthorized, ctx, principal, key
  end
  if v.policyDocument ~= nil then
    local _, perr = M.evaluate_policy(v.policyDocument, "")
    if perr then
      return nil, perr
    end
    return false, v.policyDocument, ctx, principal, key
  end
  return nil, "an authorizer result needs isAuthorized (simple) or policyDocument (IAM)"
end

-- The result an authorizer cache keeps: { simple = bool, allowed = bool (simple), policy =
-- doc (IAM), principal_id, context = {k = string}, usage_identifier_key }.
function M.authorizer_result(simple, what, ctx, principal, key)
  if simple then
    return { simple = true, allowed = what, context = ctx, principal_id = principal,
             usage_identifier_key = key }
  end
  return { simple = false, policy = what, context = ctx, principal_id = principal,
           usage_identifier_key = key }
end

-- A kept result's parts, as run_authorizer returns them.
function M.result_values(res)
  local what = res.policy
  if res.simple then
    what = res.allowed
  end
  return res.simple, what, res.context, res.principal_id, res.usage_identifier_key
end

-- The outcome of a checked result for the request of auth: "allow" or "deny", and
-- whether a deny is explicit (a Deny statement of an IAM policy).
function M.authorizer_outcome(simple, what, auth)
  if simple then
    return what and "allow" or "deny", false
  end
  local effect = M.evaluate_policy(what, auth.method_arn)
  return effect == "allow" and "allow" or "deny", effect == "deny"
end

local function copy(t)
  local out = {}
  if next(t) == nil then -- most contexts: no loop (a loop that ends at once stops traces)
    return out
  end
  for k, v in pairs(t) do
    out[k] = v
  end
  return out
end

-- The decision from a checked result; its context is the request's own copy (hooks may
-- change it without touching a cached result).
local function decide(simple, what, ctx, principal, key, auth)
  local outcome, explicit_deny = M.authorizer_outcome(simple, what, auth)
  return {
    context = copy(ctx), principal_id = principal, usage_identifier_key = key, outcome = outcome,
    status = outcome == "allow" and 200 or 403, explicit_deny = explicit_deny or nil,
  }
end

-- error("Unauthorized") (with or without a position) means 401.
local function is_unauthorized(err)
  local msg = type(err) == "table" and err.message or err
  return type(msg) == "string" and (msg == "Unauthorized" or find(msg, "^[^\n]-:%d+: Unauthorized$") ~= nil)
end

-- Runs an authorizer use's policy with auth (its third argument, authorizer_input's):
-- the checked result (simple, what, ctx, principal, key: true and isAuthorized's value,
-- or false and the IAM policy document; the context as {k = string}, the principal id,
-- the usage identifier key), or nil, "unauthorized" or "error", the message and the
-- traceback. call is how the policy function is run (M.call or the runtime's).
function M.run_authorizer(use, req, call, auth)
  local ok, v = call(use.mod.authorize, req, use.conf, auth)
  if not ok then
    if is_unauthorized(v) then
      return nil, "unauthorized", "Unauthorized"
    end
    return nil, "error", v.message, v.traceback
  end
  local simple, what, ctx, principal, key = check_result(v)
  if simple == nil then
    return nil, "error", "malformed authorizer result: " .. what
  end
  return simple, what, ctx, principal, key
end

-- Runs an authorizer use for req: { outcome = "allow" | "unauthorized" | "deny" |
-- "error", status, context, principal_id, usage_identifier_key, explicit_deny,
-- error (message), traceback, result (with remember: what may be cached) }: the busted
-- kit's view (the runtime takes run_authorizer's values as they are). call is how the
-- hook function is run (M.call or the runtime's equivalent).
function M.authorize(use, req, call, auth, remember)
  if not auth then
    local why
    auth, why = M.authorizer_input(use, req)
    if not auth then
      return { outcome = "unauthorized", status = 401, error = why }
    end
  end
  local simple, what, ctx, principal, key = M.run_authorizer(use, req, call, auth)
  if simple == nil then
    return { outcome = what, status = what == "unauthorized" and 401 or 500, error = ctx,
             traceback = principal }
  end
  local d = decide(simple, what, ctx, principal, key, auth)
  if remember then
    d.result = M.authorizer_result(simple, what, ctx, principal, key)
  end
  return d
end

---------------------------------------------------------------------------
-- WAF
---------------------------------------------------------------------------

-- Adds a matched rule's labels to the request (moongate.waf, loaded on first use: it
-- binds the gateway's C functions).
local function add_labels(req, labels)
  require("moongate.waf").add_labels(req, labels)
end

-- One rule of a web ACL: returns nil when the evaluation goes on with the next rule,
-- else the action ("ALLOW", "BLOCK" or "ERROR"); and counted (nil or the names of the
-- count rules that matched so far), and the error { message, traceback } of a rule that
-- failed.
local function inspect_rule(rule, req, call, counted)
  local ok, matched = call(rule.mod.inspect, req, rule.conf)
  if not ok then
    return "ERROR", counted, matched
  end
  if matched then
    if rule.labels then -- a policy or managed rule's (a statement adds its own in C)
      add_labels(req, rule.labels)
    end
    local action = rule.action
    if action ~= "count" then
      return action == "block" and "BLOCK" or "ALLOW", counted
    end
    counted = counted or {}
    counted[#counted + 1] = rule.name
  end
  return nil, counted
end

-- The gateway's form of a web ACL: a chain of functions, one per rule, each ending in
-- a tail call of the next, made once per configuration generation. The JIT compiles a
-- chain into the trace of its caller, where a loop over a few rules leaves its root
-- trace after an iteration or two and then runs interpreted.
local function waf_chain(use)
  local default = use.default_action == "block" and "BLOCK" or "ALLOW"
  local step = function(_, _, counted)
    return default, nil, counted
  end
  local rules = use.rules
  for i = #rules, 1, -1 do
    local rule, after = rules[i], step
    step = function(req, call, counted)
      local action, c, err = inspect_rule(rule, req, call, counted)
      if action then
        return action, rule, c, err
      end
      return after(req, call, c)
    end
  end
  return step
end

-- Runs a web ACL (use.rules sorted by priority, use.default_action "allow" or
-- "block"): returns the action ("ALLOW", "BLOCK" or "ERROR"), the terminating rule
-- (nil: the default action), the names of the count rules that matched (nil: none) and
-- the error ({ message, traceback }) of a rule that failed. The gateway's uses run as a
-- chain (above); others (the busted kit's, made per call) as a loop over the same
-- inspect_rule.
function M.waf_run(use, req, call, chained)
  if chained then
    local chain = use.waf_chain
    if chain == nil then
      chain = waf_chain(use)
      use.waf_chain = chain
    end
    return chain(req, call, nil)
  end
  local counted
  for _, rule in ipairs(use.rules) do
    local action, c, err = inspect_rule(rule, req, call, counted)
    if action then
      return action, rule, c, err
    end
    counted = c
  end
  return use.default_action == "block" and "BLOCK" or "ALLOW", nil, counted
end

-- The same as a decision: { action = "ALLOW" | "BLOCK", status = 200 | 403 | 500, rule
-- (the terminating rule's name), counted (names of count rules that matched), error,
-- traceback }.
function M.waf(use, req, call)
  local action, rule, counted, err = M.waf_run(use, req, call)
  counted = counted or {}
  if action == "ERROR" then
    return { status = 500, rule = rule.name, counted = counted, error = err.message,
             traceback = err.traceback }
  end
  return { action = action, status = action == "BLOCK" and 403 or 200, rule = rule and rule.name,
           counted = counted }
end

---------------------------------------------------------------------------
-- Route selection
---------------------------------------------------------------------------

-- Runs a selector: { route_key = the key that serves the request (nil: the route
-- keys decide), status = 404 | 500 when none can, error }. use.routes is the set
-- of the API's route keys (nil: any key is taken as is).
function M.select_route(use, req, call)
  local ok, key = call(use.mod.select_route, req, use.conf)
  if not ok then
    return { status = 500, error = key.message, traceback = key.traceback }
  end
  if key == nil then
    return { declined = true }
  end
  if type(key) ~= "string" then
    return { status = 500, error = "select_route must return a route key (a string) or nil, got "
      .. type(key) }
  end
  local routes = use.routes
  if routes == nil or routes[key] then
    return { route_key = key }
  end
  if routes["$default"] then
    return { route_key = "$default", unknown = key }
  end
  return { status = 404, unknown = key }
end

---------------------------------------------------------------------------
-- Lua integrations
---------------------------------------------------------------------------

M.json_encode = events.json_encode

-- A 2.0 handler result -> { status, headers, body } (moongate.events).
M.response = events.response

-- Runs a Lua integration: handle(event, conf, req) (req for req.ctx and what the
-- event does not carry). Returns the response { status, headers, body }, or
-- { status = 500, error, traceback }.
-- A $connect handler's result.context: the values later events of the connection see
-- as requestContext.connectionContext ({ name = string | number | boolean }), or nil and
-- why it is malformed.
function M.connection_context(v)
  if type(v) ~= "table" then
    return nil, "context must be a table, got " .. type(v)
  end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" then
      return nil, "context keys must be strings"
    end
    local t = type(x)
    if t ~= "string" and t ~= "number" and t ~= "boolean" then
      return nil, format("context.%s must be a string, number or boolean, got a %s", k, t)
    end
    out[k] = x
  end
  return out
end

-- Runs a Lua integration: handle(event, conf, req) (req for req.ctx and what the
-- event does not carry). Returns the response { status, headers, body } (for a
-- WebSocket $connect with connection_context when the handler returned context), or
-- { status = 500, error, traceback }.
-- A use with payload_format_version "1.0" gets the 1.0 event and answers with the 1.0
-- response shape; on a REST API (use.rest) a failed or malformed handler is AWS's 502.
function M.handle(use, req, call)
  if use.payload_format_version == "1.0" then
    local rest = use.rest
    local ok, v = call(use.mod.handle, events.v1(req, rest), use.conf, req)
    local status = rest and 502 or 500
    if not ok then
      return { status = status, error = v.message, traceback = v.traceback }
    end
    local resp, why = events.response_v1(v)
    if not resp then
      return { status = status, error = "malformed handler result: " .. why }
    end
    return resp
  end
  local event = M.event(req)
  local ok, v = call(use.mod.handle, event, use.conf, req)
  if not ok then
    return { status = 500, error = v.message, traceback = v.traceback }
  end
  local resp, why = M.response(v)
  if not resp then
    return { status = 500, error = "malformed handler result: " .. why }
  end
  return M.connect_result(event, v, resp)
end

-- Adds to resp what a WebSocket $connect handler's result v keeps for the connection
-- (resp.connection_context), or turns resp into the 500 of a malformed context.
function M.connect_result(event, v, resp)
  -- v.context first: reading event.requestContext would build a lazy message event's rest
  if type(v) ~= "table" or v.context == nil then
    return resp
  end
  local rc = type(event) == "table" and event.requestContext
  if type(rc) == "table" and rc.eventType == "CONNECT" then
    local ctx, why = M.connection_context(v.context)
    if not ctx then
      return { status = 500, error = "malformed handler result: " .. why }
    end
    resp.connection_context = ctx
  end
  return resp
end

---------------------------------------------------------------------------
-- Log policies
---------------------------------------------------------------------------

local Ctx = {}

function Ctx.get(self, name)
  return self.request:context(name)
end

local CtxMeta = {
  __index = function(self, k)
    local m = Ctx[k]
    if m then
      return m
    end
    return self.request:context(k)
  end,
}

-- What a log hook gets: ctx.request, ctx:get("identity.sourceIp"), ctx["status"].
function M.log_context(req)
  return setmetatable({ request = req }, CtxMeta)
end

-- Runs a log policy: { line = text } or { custom = { name = string } } or {}, or
-- { error, traceback }.
function M.log(use, req, call)
  local ok, v = call(use.mod.log, M.log_context(req), use.conf)
  if not ok then
    return { error = v.message, traceback = v.traceback }
  end
  if type(v) == "string" then
    if find(v, "[\r\n]") then
      return { error = "a log line must not contain CR or LF" }
    end
    return { line = v }
  elseif type(v) == "table" then
    local custom, why = context_values(v)
    if not custom then
      return { error = "malformed log result: " .. gsub(why, "^context", "custom") }
    end
    return { custom = custom }
  elseif v == nil then
    return {}
  end
  return { error = "log must return a string, a table or nil, got " .. type(v) }
end

-- Mutual-TLS revocation check: check(cert, conf) -> { outcome = "allow" }, or
-- { outcome = "deny", reason = ... }, or { outcome = "error", error = ... } (a failure,
-- which the gateway treats as a refusal).
function M.check_cert(use, cert, call)
  local ok, verdict, reason = call(use.mod.check, cert, use.conf)
  if not ok then
    return { outcome = "error", error = M.describe(verdict) }
  end
  if verdict == true or verdict == "allow" then
    return { outcome = "allow" }
  end
  if verdict == false or verdict == "deny" or verdict == nil then
    return { outcome = "deny", reason = reason ~= nil and tostring(reason) or "denied by the revocation check" }
  end
  return { outcome = "error", error = 'check must return true or "allow", false or "deny", got ' .. type(verdict) }
end

return M
