-- moongate.config.checks: the checks that need more than one field, attached to
-- schema nodes as `post` functions (moongate.config.schema): references between APIs,
-- stages, routes, authorizers, usage plans, API keys, listeners, domains and the
-- management listener, and the policy uses (moongate.config.policies). A post sees the
-- checked value `c` (defaults applied, invalid parts nil), the raw value `v` as
-- written, its path and the walk's ctx (ctx.raw: the whole configuration as written).
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local io_open = io.open
local format, find, match, gsub, lower = string.format, string.find, string.match, string.gsub,
  string.lower
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local policies = require "moongate.config.policies"
local validation = require "moongate.config.validation"
local mapping_conf = require "moongate.config.mapping"
local cache_conf = require "moongate.config.cache"
local waf_conf = require "moongate.config.waf"
local logsink = require "moongate.config.logsink"
local quote, show, num, contains, join = lang.quote, lang.show, lang.num, lang.contains, lang.join
local sorted_keys, string_keys, did_you_mean, fail = lang.sorted_keys, lang.string_keys,
  lang.did_you_mean, lang.fail
local API_ID, parse_target, parse_route_key = values.API_ID, values.parse_target, values.parse_route_key
local route_key_error, ws_route_key_error = values.route_key_error, values.ws_route_key_error
local url_error, expand_stage_variables, resolve = values.url_error, values.expand_stage_variables,
  values.resolve
local hex64_error, api_key_value_error = values.hex64_error, values.api_key_value_error
local certificate_pair_error = values.certificate_pair_error
local policy_use = policies.use

local M = {}

---------------------------------------------------------------------------
-- References to APIs and stages (checks of single strings that read ctx.raw)
---------------------------------------------------------------------------

local function api_ref_error(id, raw)
  local ids = string_keys(type(raw) == "table" and raw.apis)
  if not contains(ids, id) then
    return "unknown API " .. quote(id) .. did_you_mean(id, ids)
  end
end

local function listener_api_error(v, ctx)
  return api_ref_error(v, ctx.raw)
end

local function mapping_target_error(v, ctx)
  local api, stage = parse_target(v)
  if not api then
    return 'must be "api" or "api/stage", got ' .. show(v)
  end
  local err = api_ref_error(api, ctx.raw)
  if err then
    return err
  end
  local stages = ctx.raw.apis[api]
  stages = type(stages) == "table" and stages.stages
  if stage and (type(stages) ~= "table" or stages[stage] == nil) then
    return format("API %s has no stage %s%s", quote(api), quote(stage),
      did_you_mean(stage, string_keys(stages)))
  end
end

---------------------------------------------------------------------------
-- Listeners, routes, stages, usage plans, API keys
---------------------------------------------------------------------------

local function check_listeners(c, _, path, ctx)
  local used = {}
  for i, l in ipairs(c) do
    if l and l.address and l.port then
      local where = find(l.address, ":", 1, true) and format("[%s]:%d", l.address, l.port)
        or format("%s:%d", l.address, l.port)
      if used[where] then
        fail(ctx, join(path, i), format("%s is already used by %s", where, join(path, used[where])))
      else
        used[where] = i
      end
    end
  end
end

local function check_uri_params(uri, params, path, ctx)
  local template = gsub(uri, "%${[^}]*}", "")
  for inner in template:gmatch("{([^{}]*)}") do
    local name = gsub(inner, "%+$", "")
    if not params[name] then
      fail(ctx, path, format("{%s} is not a path parameter of the route", inner))
    end
  end
end

local function check_uri_stages(uri, stages, path, ctx)
  if not find(uri, "${", 1, true) or type(stages) ~= "table" then
    return
  end
  for _, name in ipairs(sorted_keys(stages)) do
    local variables = stages[name] and stages[name].variables
    if variables then
      local url, missing = expand_stage_variables(uri, variables)
      local err = url and url_error(url)
      if missing then
        fail(ctx, path, format("stage %s has no variable %s", quote(name), quote(missing)))
      elseif err then
        fail(ctx, path, format("%s (stage %s)", err, quote(name)))
      end
    end
  end
end

-- route_settings keys must name routes of the API.
local function check_route_settings(settings, routes, path, ctx)
  if type(settings) ~= "table" or type(routes) ~= "table" then
    return
  end
  local keys = string_keys(routes)
  for _, key in ipairs(sorted_keys(settings)) do
    if routes[key] == nil then
      fail(ctx, join(path, key), "is not a route of the API" .. did_you_mean(key, keys))
    end
  end
end

local function check_throttle_refs(c, path, ctx)
  for _, name in ipairs(sorted_keys(c.stages or {})) do
    local st = c.stages[name]
    if st then
      check_route_settings(st.route_settings, c.routes, join(join(join(path, "stages"), name), "route_settings"), ctx)
    end
  end
  for _, name in ipairs(sorted_keys(c.usage_plans or {})) do
    local plan, ppath = c.usage_plans[name], join(join(path, "usage_plans"), name)
    if plan then
      check_route_settings(plan.route_settings, c.routes, join(ppath, "route_settings"), ctx)
      local stage_names = string_keys(c.stages or {})
      for i, s in ipairs(plan.stages or {}) do
        if s and c.stages and c.stages[s] == nil then
          fail(ctx, join(join(ppath, "stages"), i), "no stage " .. quote(s) .. did_you_mean(s, stage_names))
        end
      end
      if plan.quota and plan.quota.offset and plan.quota.limit and plan.quota.offset >= plan.quota.limit then
        fail(ctx, join(join(ppath, "quota"), "offset"), "must be less than the limit")
      end
    end
  end
end

-- Reads an API key file: "id value" or "id sha256:HEX" per line, # comments.
-- Returns a map id -> { value = } | { sha256 = }, or nil and an error.
local function read_key_file(file)
  local f, err = io_open(file, "r")
  if not f then
    return nil, "cannot read: " .. tostring(err)
  end
  local keys, n = {}, 0
  for line in f:lines() do
    n = n + 1
    line = gsub(gsub(line, "#.*$", ""), "^%s+", "")
    if line ~= "" then
      local id, secret = match(line, "^(%S+)%s+(%S+)%s*$")
      local digest = secret and match(secret, "^sha256:(.*)$")
      local bad = not id and "expected \"id value\" or \"id sha256:HEX\""
        or not find(id, API_ID) and "invalid key id " .. quote(id)
        or (digest and hex64_error(digest)) or (not digest and api_key_value_error(secret))
        or keys[id] and "duplicate key id " .. quote(id)
      if bad then
        f:close()
        return nil, format("line %d: %s", n, bad)
      end
      keys[id] = digest and { sha256 = lower(digest) } or { value = secret }
    end
  end
  f:close()
  return keys
end

-- Whole-configuration checks: the key file, and that usage plans name keys
-- that exist.
local function check_root(c, _, _, ctx)
  local keys = {}
  for id, k in pairs(c.api_keys or {}) do
    keys[id] = k
  end
  if c.api_keys_file then
    local file_keys, err = read_key_file(resolve(ctx.prefix, c.api_keys_file))
    if not file_keys then
      fail(ctx, "api_keys_file", err)
    else
      for id, k in pairs(file_keys) do
        if keys[id] then
          fail(ctx, "api_keys_file", "key id " .. quote(id) .. " is also in api_keys")
        end
        keys[id] = k
      end
    end
  end
  ctx.all_keys = keys
  local seen = {}
  for _, id in ipairs(sorted_keys(keys)) do
    local v = keys[id] and keys[id].value
    if v and seen[v] then
      fail(ctx, join("api_keys", id), "has the same value as " .. quote(seen[v]))
    elseif v then
      seen[v] = id
    end
  end
  local ids = string_keys(keys)
  for _, api_id in ipairs(sorted_keys(c.apis or {})) do
    local a = c.apis[api_id]
    for _, name in ipairs(sorted_keys(a and a.usage_plans or {})) do
      local plan = a.usage_plans[name]
      for i, id in ipairs(plan and plan.keys or {}) do
        if id and keys[id] == nil then
          fail(ctx, join(join(join(join(join("apis", api_id), "usage_plans"), name), "keys"), i),
            "no API key " .. quote(id) .. did_you_mean(id, ids))
        end
      end
    end
  end
end

-- Per API: routes whose paths have the same shape conflict; HTTP integration
-- URIs may only use the route's parameters and must expand in every stage.
local check_route_authorizers

-- The route keys of maps keyed by route (routes, route_settings) as written: the keys
-- of `raw` with the form of the API's protocol; an invalid one is reported and dropped
-- from the checked map `checked` (as the schema walker drops an invalid key).
local function check_route_key_form(raw, checked, path, ctx, key_error)
  if type(raw) ~= "table" then
    return
  end
  for _, key in ipairs(string_keys(raw)) do
    local err = key_error(key)
    if err then
      fail(ctx, join(path, key), err)
      if type(checked) == "table" then
        checked[key] = nil
      end
    end
  end
end

local function raw_field(t, ...)
  for _, k in ipairs({ ... }) do
    if type(t) ~= "table" then
      return nil
    end
    t = t[k]
  end
  return t
end

-- Route keys have the form of the protocol: "METHOD /path" for HTTP APIs (and also
-- the keys of route_settings), anything printable for WebSocket APIs (route_settings
-- keys must then name a route, which check_throttle_refs checks).
local function check_route_keys(c, v, path, ctx, ws)
  if ws then
    check_route_key_form(v.routes, c.routes, join(path, "routes"), ctx, ws_route_key_error)
    return
  end
  check_route_key_form(v.routes, c.routes, join(path, "routes"), ctx, route_key_error)
  for _, group in ipairs({ "stages", "usage_plans" }) do
    if type(v[group]) == "table" then
      for _, name in ipairs(string_keys(v[group])) do
        check_route_key_form(raw_field(v, group, name, "route_settings"),
          raw_field(c, group, name, "route_settings"),
          join(join(join(path, group), name), "route_settings"), ctx, route_key_error)
      end
    end
  end
end

local WS_ONLY = "is only for websocket APIs"

-- REST APIs (README "REST APIs"): the first path segment always names the stage and a
-- request that no route matches is 403 MISSING_AUTHENTICATION_TOKEN, so there is no
-- "$default" stage or route. WebSocket APIs check API keys when a client connects, from
-- the x-api-key header: api_key_source is for HTTP and REST APIs.
local function check_rest_fields(c, v, path, ctx)
  if c.protocol == "websocket" and v.api_key_source ~= nil then
    fail(ctx, join(path, "api_key_source"), "is not for websocket APIs (their API key is the x-api-key header of $connect)")
  end
  if c.protocol ~= "rest" then
    return
  end
  if type(v.stages) == "table" and v.stages["$default"] ~= nil then
    fail(ctx, join(join(path, "stages"), "$default"),
      'a REST API has no "$default" stage (the first path segment always names the stage)')
  end
  if type(v.routes) == "table" and v.routes["$default"] ~= nil then
    fail(ctx, join(join(path, "routes"), "$default"),
      'a REST API has no "$default" route (use "ANY /{proxy+}")')
  end
end

-- What only WebSocket APIs have, and what they must not have.
local function check_protocol_fields(c, v, path, ctx)
  local ws, http = c.protocol == "websocket", c.protocol == "http" or c.protocol == "rest"
  local routes = type(v.routes) == "table" and v.routes or {}
  if ws and v.route_selection_expression == nil then
    fail(ctx, join(path, "route_selection_expression"), "is required for websocket APIs")
  elseif http and v.route_selection_expression ~= nil then
    fail(ctx, join(path, "route_selection_expression"), WS_ONLY)
  end
  if http and v.websocket ~= nil then
    fail(ctx, join(path, "websocket"), WS_ONLY)
  end
  if ws and v.route_selection ~= nil then
    fail(ctx, join(path, "route_selection"),
      "is not for websocket APIs (route_selection_expression selects their routes)")
  end
  local wsc = ws and type(c.websocket) == "table" and c.websocket or {}
  if wsc.connections_authorizer ~= nil then
    local wpath = join(join(path, "websocket"), "connections_authorizer")
    if wsc.connections_endpoint ~= true then
      fail(ctx, wpath, "needs connections_endpoint = true")
    elseif type(c.authorizers) ~= "table" or c.authorizers[wsc.connections_authorizer] == nil then
      fail(ctx, wpath, format("names no authorizer of this API (%q)", wsc.connections_authorizer))
    end
  end
  if wsc.connections_scopes ~= nil and wsc.connections_authorizer == nil then
    fail(ctx, join(join(path, "websocket"), "connections_scopes"), "needs connections_authorizer")
  end
  for _, key in ipairs(string_keys(routes)) do
    local r, rpath = routes[key], join(join(path, "routes"), key)
    if type(r) == "table" then
      if http and type(r.route_response) == "boolean" then -- another type is reported as such
        fail(ctx, join(rpath, "route_response"), WS_ONLY)
      end
      if ws and key ~= "$connect" and r.authorizer ~= nil then
        fail(ctx, join(rpath, "authorizer"),
          'only the "$connect" route may have an authorizer (a WebSocket is authorized when it connects)')
      end
      if ws and key ~= "$connect" and r.api_key_required == true then
        fail(ctx, join(rpath, "api_key_required"),
          'only the "$connect" route may require an API key (a WebSocket is authorized when it connects)')
      end
    end
  end
end

-- A WebSocket API's settings: a message holds at least one frame.
local function check_websocket(c, _, path, ctx)
  if c.max_frame_size and c.max_message_size and c.max_message_size < c.max_frame_size then
    fail(ctx, join(path, "max_message_size"), format("must be at least max_frame_size (%s), got %s",
      num(c.max_frame_size), num(c.max_message_size)))
  end
end

-- payload_format_version of Lua integrations and authorizers: REST APIs allow only
-- "1.0"; WebSocket APIs have their own event (none may be set).
local function check_payload_versions(c, path, ctx)
  local function check(t, tpath)
    local pfv = type(t) == "table" and t.payload_format_version
    if not pfv then
      return
    end
    tpath = join(tpath, "payload_format_version")
    if c.protocol == "websocket" then
      fail(ctx, tpath, "is not for websocket APIs (their Lua integrations and authorizers get the WebSocket event)")
    elseif c.protocol == "rest" and pfv ~= "1.0" then
      fail(ctx, tpath, format('REST APIs support only payload format "1.0", got %q', pfv))
    end
  end
  for _, key in ipairs(sorted_keys(c.routes or {})) do
    local r = c.routes[key]
    check(type(r) == "table" and r.integration, join(join(join(path, "routes"), key), "integration"))
  end
  for _, name in ipairs(sorted_keys(c.authorizers or {})) do
    check(c.authorizers[name], join(join(path, "authorizers"), name))
  end
end

local function check_api(c, v, path, ctx)
  local ws = c.protocol == "websocket"
  check_route_keys(c, v, path, ctx, ws)
  check_protocol_fields(c, v, path, ctx)
  check_payload_versions(c, path, ctx)
  check_rest_fields(c, v, path, ctx)
  check_throttle_refs(c, path, ctx)
  check_route_authorizers(c, path, ctx)
  validation.check_api(c, v, path, ctx) -- request validation
  cache_conf.check_api(c, v, path, ctx) -- response caching
  if type(v.routes) ~= "table" or type(c.routes) ~= "table" then
    return
  end
  local seen = {}
  local routes_path = join(path, "routes")
  for _, key in ipairs(string_keys(v.routes)) do
    local route = not ws and parse_route_key(key)
    local rpath = join(routes_path, key)
    if ws then
      -- no path parameters; stage variables must expand in every stage
      local integration = c.routes[key] and c.routes[key].integration
      if integration and integration.type == "http" and integration.uri then
        local upath = join(join(rpath, "integration"), "uri")
        check_uri_params(integration.uri, {}, upath, ctx)
        check_uri_stages(integration.uri, c.stages, upath, ctx)
        mapping_conf.check_route(integration, {}, true, join(rpath, "integration"), ctx)
      end
    elseif route then
      if seen[route.shape] then
        fail(ctx, rpath, "conflicts with " .. quote(seen[route.shape]))
      else
        seen[route.shape] = key
      end
      local integration = c.routes[key] and c.routes[key].integration
      if integration and integration.type == "http" and integration.uri then
        local upath = join(join(rpath, "integration"), "uri")
        check_uri_params(integration.uri, mapping_conf.uri_params(integration, route.params), upath, ctx)
        check_uri_stages(integration.uri, c.stages, upath, ctx)
        mapping_conf.check_route(integration, route.params, false, join(rpath, "integration"), ctx)
      end
    end
  end
end

-- The refill window burst / rate must fit the nanosecond clock comfortably.
local function check_throttle(c, _, path, ctx)
  if c.rate and c.burst and c.burst / c.rate > 1e7 then
    fail(ctx, path, format("burst / rate must be at most 10000000 seconds (the time to refill), got %s",
      num(c.burst / c.rate)))
  end
end

-- An API key: its value, or only the SHA-256 of its value so that the
-- configuration holds no secret.
local function check_api_key(_, v, path, ctx)
  if type(v) == "table" and (v.value == nil) == (v.sha256 == nil) then
    fail(ctx, path, 'needs exactly one of "value" and "sha256"')
  end
end

-- Route checks of an API: a route's authorizer must exist; scopes need one.
function check_route_authorizers(c, path, ctx)
  local names = string_keys(c.authorizers or {})
  for _, key in ipairs(sorted_keys(c.routes or {})) do
    local r = c.routes[key]
    local rpath = join(join(path, "routes"), key)
    if r and r.authorizer and (c.authorizers or {})[r.authorizer] == nil then
      fail(ctx, join(rpath, "authorizer"), "no authorizer " .. quote(r.authorizer) .. did_you_mean(r.authorizer, names))
    end
    if r and r.scopes and #r.scopes > 0 and not r.authorizer then
      fail(ctx, join(rpath, "scopes"), "scopes need an authorizer on the route")
    end
  end
end

---------------------------------------------------------------------------
-- Authorizers, WAF, access log, management, TLS
---------------------------------------------------------------------------

-- An authorizer's shared_cache (README "Running a cluster"): it shares the cache ttl keeps,
-- through the cluster's Redis.
local function check_shared_cache(c, path, ctx, what)
  if c.shared_cache and (c.ttl or 0) == 0 then
    fail(ctx, join(path, "shared_cache"), "needs ttl > 0 (it shares the cache that ttl keeps)")
  elseif c.shared_cache and not (type(ctx.raw) == "table" and ctx.raw.cluster) then
    fail(ctx, join(path, "shared_cache"), "needs cluster (" .. what .. " are shared through its Redis)")
  end
end

local check_lua_use = policy_use("authorizer")

local function check_authorizer(c, v, path, ctx)
  -- counted on the raw list: the checked one loses invalid entries
  local count = type(v.identity_sources) == "table" and #v.identity_sources or 0
  if c.kind == "TOKEN" then
    c.identity_sources = c.identity_sources or { "$request.header.Authorization" }
    if v.identity_sources ~= nil and count ~= 1 then
      fail(ctx, join(path, "identity_sources"), "a TOKEN authorizer takes exactly one identity source")
    end
  else
    c.identity_sources = c.identity_sources or {}
    if c.token_pattern then
      fail(ctx, join(path, "token_pattern"), 'is for kind = "TOKEN" authorizers')
    end
    if count == 0 and (c.ttl or 0) > 0 then
      fail(ctx, join(path, "identity_sources"),
        "must not be empty when ttl > 0 (the cache is keyed by them); set ttl = 0 to call the authorizer on every request")
    end
  end
  check_shared_cache(c, path, ctx, "decisions")
  check_lua_use(c, v, path, ctx)
end

-- A JWT authorizer's key sources: jwks_uri or jwks_file (not both), secret_file for HS*
-- tokens, or OIDC discovery from the issuer when none is given; a secret of at least 32
-- bytes (RFC 7518 3.2 asks for at least the hash's size); HS* algorithms only with it.
local function check_jwt_authorizer(c, v, path, ctx)
  if type(v) ~= "table" then
    return
  end
  if v.jwks_uri ~= nil and v.jwks_file ~= nil then
    fail(ctx, join(path, "jwks_file"), "cannot be used with jwks_uri (give one JWK Set)")
  end
  local jwks = v.jwks_uri ~= nil or v.jwks_file ~= nil
  if not jwks and v.secret_file == nil then
    if c.discovery == false then
      fail(ctx, path, "needs a key source: jwks_uri, jwks_file, secret_file, or discovery = true")
    elseif c.issuer and url_error(c.issuer) then
      fail(ctx, join(path, "issuer"), "must be an http(s) URL for OIDC discovery (or give jwks_uri,"
        .. " jwks_file or secret_file), got " .. show(c.issuer))
    end
  end
  if c.secret_file then
    local f = io_open(resolve(ctx.prefix, c.secret_file), "rb")
    local secret = f and f:read("*a")
    if f then
      f:close()
    end
    if secret and #secret < 32 then
      fail(ctx, join(path, "secret_file"), format("the secret must be at least 32 bytes, got %d", #secret))
    end
  end
  local has_hs = false
  for i, alg in ipairs(c.algorithms or {}) do
    has_hs = has_hs or (alg and find(alg, "^HS") ~= nil)
    if alg and find(alg, "^HS") and v.secret_file == nil then
      fail(ctx, join(join(path, "algorithms"), i),
        quote(alg) .. " needs secret_file (an HS algorithm never uses a key from a JWK Set)")
    end
  end
  if c.algorithms and not has_hs and v.secret_file ~= nil and not jwks then
    fail(ctx, join(path, "algorithms"), "has no HS algorithm, and secret_file is the only key source")
  end
  check_shared_cache(c, path, ctx, "verified tokens")
end

local function check_waf(c, v, path, ctx)
  if c.default_response and c.default_action ~= "block" then
    fail(ctx, join(path, "default_response"), 'applies only when default_action is "block"')
  end
  local priorities, names = {}, {}
  for i, rule in ipairs(c.rules or {}) do
    if rule then
      local rpath = join(join(path, "rules"), i)
      waf_conf.check_rule(rule, type(v) == "table" and type(v.rules) == "table" and v.rules[i], rpath, ctx)
      if rule.name == nil and rule.policy then
        rule.name = match(rule.policy, "([^/]+)%.lua$") or rule.policy
      end
      if rule.priority and priorities[rule.priority] then
        fail(ctx, join(rpath, "priority"), format("priority %s is also rules[%d]'s (priorities must be unique)",
          num(rule.priority), priorities[rule.priority]))
      elseif rule.priority then
        priorities[rule.priority] = i
      end
      if rule.name and names[rule.name] then
        fail(ctx, join(rpath, "name"), format("%s is also rules[%d]'s name (give rules distinct names)",
          quote(rule.name), names[rule.name]))
      elseif rule.name then
        names[rule.name] = i
      end
    end
  end
end

local check_log_use = policy_use("log")

local function check_access_log(c, v, path, ctx)
  logsink.check(v, path, ctx)
  if v.format == nil and v.policy == nil then
    fail(ctx, join(path, "format"), "is required (unless a log policy writes the lines)")
  end
  check_log_use(c, v, path, ctx)
end

-- The management listener must not take a listener's address.
local function check_management(c, _, path, ctx)
  local listen = type(ctx.raw) == "table" and ctx.raw.listen
  for i, l in ipairs(type(listen) == "table" and listen or {}) do
    if type(l) == "table" and l.port == c.port and (l.address or "127.0.0.1") == c.address then
      fail(ctx, join(path, "port"), format("%s:%s is also listen[%d]", c.address, num(c.port), i))
    end
  end
end

-- tracing.otlp: a batch must fit in the queue it is taken from.
local function check_otlp(c, _, path, ctx)
  if c.batch_size > c.max_queue then
    fail(ctx, join(path, "batch_size"), format("must be at most max_queue (%s), got %s",
      num(c.max_queue), num(c.batch_size)))
  end
end

-- tracing.request_id_header: not a header the gateway writes itself for other reasons.
local GATEWAY_HEADERS = { traceparent = true, tracestate = true, host = true, ["content-length"] = true,
  ["transfer-encoding"] = true, connection = true, ["x-forwarded-for"] = true,
  ["x-forwarded-proto"] = true, ["x-forwarded-port"] = true }
local function check_tracing(c, _, path, ctx)
  if c.request_id_header and GATEWAY_HEADERS[c.request_id_header] then
    fail(ctx, join(path, "request_id_header"),
      format("%s is a header the gateway sets itself", quote(c.request_id_header)))
  end
end

-- A stage's client certificate: a certificate and key, or one to generate.
local function check_client_certificate(_, v, path, ctx)
  if type(v) == "table" and (v.generate == true) == (v.certificate ~= nil or v.key ~= nil) then
    fail(ctx, path, 'needs "certificate" and "key", or "generate = true"')
  elseif type(v) == "table" and not v.generate and (v.certificate == nil or v.key == nil) then
    fail(ctx, path, 'needs both "certificate" and "key"')
  end
end

-- A listener's certificate and key, as the gateway would load them.
local function check_listener_tls(c, _, path, ctx)
  local err = certificate_pair_error(c, ctx)
  if err then
    fail(ctx, path, err)
  end
end

local function check_domain(c, v, path, ctx)
  if type(v) ~= "table" then
    return
  end
  if (v.certificate == nil) ~= (v.key == nil) then
    fail(ctx, path, 'needs both "certificate" and "key", or neither')
  end
  if v.mtls ~= nil and v.certificate == nil then
    fail(ctx, join(path, "mtls"), "needs the domain's certificate and key (mutual TLS is TLS)")
  end
  -- Domain certificates are loaded only into TLS listeners: checked when there is one.
  local listen = type(ctx.raw) == "table" and ctx.raw.listen
  for _, l in ipairs(type(listen) == "table" and listen or {}) do
    if type(l) == "table" and l.tls ~= nil then
      local err = certificate_pair_error(c, ctx)
      if err then
        fail(ctx, path, err)
      end
      break
    end
  end
end

M.listener_api_error, M.mapping_target_error = listener_api_error, mapping_target_error
M.root, M.api, M.listeners, M.throttle, M.api_key = check_root, check_api, check_listeners,
  check_throttle, check_api_key
M.authorizer, M.waf, M.access_log, M.management = check_authorizer, check_waf, check_access_log,
  check_management
M.websocket, M.jwt_authorizer = check_websocket, check_jwt_authorizer
M.otlp, M.tracing = check_otlp, check_tracing
M.client_certificate, M.listener_tls, M.domain = check_client_certificate, check_listener_tls,
  check_domain

return M
