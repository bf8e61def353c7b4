-- moongate.config.shape: the checked configuration turned into the normalized form
-- that the C runtime reads (runtime/conf/config.c walks this table): maps become lists
-- sorted by key so that C sees a deterministic order, relative file paths are resolved
-- against the prefix, route keys are split into method and path, and the Lua policy
-- uses are numbered into the workers' spec (lua_spec, moongate.runtime.load_gen).
local type, ipairs = type, ipairs
local sort = table.sort
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local policies = require "moongate.config.policies"
local validation = require "moongate.config.validation"
local mapping_conf = require "moongate.config.mapping"
local cache_conf = require "moongate.config.cache"
local waf_conf = require "moongate.config.waf"
local logsink = require "moongate.config.logsink"
local policy_lib = require "moongate.policy"
local join, sorted_keys = lang.join, lang.sorted_keys
local resolve, parse_route_key, parse_target = values.resolve, values.parse_route_key, values.parse_target
local policy_dirs = policies.dirs

local M = {}

-- The token file of the management listener m (raw or validated): the configured one
-- or state_dir/management.token, resolved against the prefix. The gateway and the
-- command line (M.management) must agree on it.
local function management_token_file(m, state_dir, prefix)
  if type(m.token_file) == "string" then
    return resolve(prefix, m.token_file), false
  end
  return resolve(prefix, (type(state_dir) == "string" and state_dir or "state") .. "/management.token"), true
end

local function map_list(map, fn)
  local out = {}
  for i, k in ipairs(sorted_keys(map)) do
    out[i] = fn(k, map[k])
  end
  return out
end

local function pairs_list(map)
  return map_list(map, function(name, value)
    return { name = name, value = value }
  end)
end

local function shape_integration(i)
  if i.type == "lua" or (i.type == "http" and i.proxy == false) then -- proxy = false runs in Lua
    return { type = "lua", timeout_ms = i.timeout_ms }
  elseif i.type == "http" then
    return { type = "http", uri = i.uri, method = i.method, timeout_ms = i.timeout_ms }
  end
  if i.type == "connections" then
    return { type = "connections" }
  end
  return { type = "mock", status = i.status, headers = pairs_list(i.headers), body = i.body }
end

local function shape_route(key, r)
  local parsed = parse_route_key(key)
  return {
    key = key, method = parsed.method, path = parsed.path,
    api_key_required = r.api_key_required, integration = shape_integration(r.integration),
  }
end

-- A WebSocket API's route: its key is not "METHOD /path".
local function shape_ws_route(key, r)
  return {
    key = key, api_key_required = r.api_key_required, route_response = r.route_response or false,
    integration = shape_integration(r.integration),
  }
end

local function shape_websocket(w)
  return {
    max_frame_size = w.max_frame_size, max_message_size = w.max_message_size,
    idle_timeout = w.idle_timeout, max_duration = w.max_duration, ping_interval = w.ping_interval,
    pong_timeout = w.pong_timeout, send_queue_size = w.send_queue_size,
  }
end

local function shape_throttle(t)
  return t and { rate = t.rate, burst = t.burst, exact = t.exact }
end

local function shape_route_settings(rs)
  local out = {}
  for _, key in ipairs(sorted_keys(rs or {})) do
    if rs[key].throttle then
      out[#out + 1] = { key = key, throttle = shape_throttle(rs[key].throttle) }
    end
  end
  return out
end

local function shape_plan(name, p)
  local keys = {}
  for i, k in ipairs(p.keys) do
    keys[i] = k
  end
  sort(keys)
  return {
    name = name,
    throttle = shape_throttle(p.throttle),
    quota = p.quota and { limit = p.quota.limit, period = p.quota.period, offset = p.quota.offset },
    keys = keys,
    stages = p.stages,
    route_settings = shape_route_settings(p.route_settings),
  }
end

local function shape_stage(api_path, name, st, prefix)
  local log = st.access_log
  local stage_path = join(join(api_path, "stages"), name)
  return {
    name = name,
    variables = pairs_list(st.variables),
    throttle = shape_throttle(st.throttle),
    shared_throttle = shape_throttle(st.shared_throttle),
    route_settings = shape_route_settings(st.route_settings),
    client_certificate = st.client_certificate and {
      certificate = st.client_certificate.certificate and resolve(prefix, st.client_certificate.certificate),
      key = st.client_certificate.key and resolve(prefix, st.client_certificate.key),
      generate = st.client_certificate.generate,
    },
    rate_limit_headers = st.rate_limit_headers,
    access_log = log and {
      sink = logsink.shape(log, prefix, join(stage_path, "access_log"), "access"),
      format = log.format,
      where = join(join(stage_path, "access_log"), "format"),
    },
    waf_log = st.waf and st.waf.log and waf_conf.shape_log(st.waf.log, prefix, join(join(stage_path, "waf"), "log")),
  }
end

-- The API's JWT authorizers (checked by the gateway itself: runtime/conf/jwtconf.c), and
-- on each route that names one its index in that list (from 1) and the route's scopes.
local function shape_jwt(api_path, a, routes, prefix)
  local list, index = {}, {}
  for _, name in ipairs(sorted_keys(a.authorizers)) do
    local az = a.authorizers[name]
    if az.type == "jwt" then
      local function file(f)
        return f and resolve(prefix, f)
      end
      list[#list + 1] = {
        name = name, where = join(join(api_path, "authorizers"), name),
        issuer = az.issuer, audience = az.audience, jwks_uri = az.jwks_uri,
        jwks_file = file(az.jwks_file), secret_file = file(az.secret_file),
        backend_ca = file(az.backend_ca), discovery = az.discovery,
        identity_source = az.identity_source, leeway = az.leeway, algorithms = az.algorithms,
        ttl = az.ttl, usage_identifier_claim = az.usage_identifier_claim,
        shared_cache = az.shared_cache or nil,
      }
      index[name] = #list
    end
  end
  for _, sr in ipairs(routes) do
    local r = a.routes[sr.key]
    if r.authorizer and index[r.authorizer] then
      sr.jwt = index[r.authorizer]
      sr.scopes = r.scopes or {}
    end
  end
  return list
end

-- @connections on a WebSocket API's own endpoint is the API's route "$connections"
-- (a key no message can select): its authorizer, scopes or API key are then checked by
-- the same phases as any route's, and its integration runs the call.
local function add_connections_route(a)
  local w = a.websocket
  if a.protocol ~= "websocket" or not (w and w.connections_endpoint) then
    return
  end
  a.routes = a.routes or {}
  a.routes["$connections"] = {
    integration = { type = "connections" },
    authorizer = w.connections_authorizer,
    scopes = w.connections_scopes,
    api_key_required = w.connections_authorizer == nil,
  }
end

local function shape_api(id, a, prefix)
  local api_path = join("apis", id)
  local ws = a.protocol == "websocket"
  add_connections_route(a)
  local routes = map_list(a.routes, ws and shape_ws_route or shape_route)
  local shaped = {
    jwt_authorizers = shape_jwt(api_path, a, routes, prefix),
    id = id,
    protocol = a.protocol,
    api_key_source = a.api_key_source, -- nil: the protocol's default (runtime/conf/apitype.c)
    route_selection_expression = ws and a.route_selection_expression or nil,
    websocket = ws and shape_websocket(a.websocket) or nil,
    default_endpoint = a.default_endpoint,
    stages = map_list(a.stages, function(name, st)
      local ss = shape_stage(api_path, name, st, prefix)
      ss.cache = cache_conf.shape_stage(api_path, a, name, st, routes) -- response caching
      return ss
    end),
    routes = routes,
    usage_plans = map_list(a.usage_plans, shape_plan),
    gateway_responses = map_list(a.gateway_responses, function(t, r)
      return {
        type = t, status = r.status, headers = pairs_list(r.headers), body = r.body,
        where = join(join(api_path, "gateway_responses"), t),
      }
    end),
  }
  validation.shape_api(api_path, a, shaped, prefix) -- models, routes' validation
  return shaped
end

local function shape_domain(host, d, prefix)
  local m = d.mtls
  return {
    host = host,
    certificate = d.certificate and resolve(prefix, d.certificate),
    key = d.key and resolve(prefix, d.key),
    mtls = m and {
      truststore = resolve(prefix, m.truststore), crl = m.crl and resolve(prefix, m.crl),
      mode = m.mode, forward_header = m.forward_header, version = m.version,
    },
    mappings = map_list(d.mappings, function(base, target)
      local api_id, stage_name = parse_target(target)
      return { base = base, api = api_id, stage = stage_name }
    end),
  }
end

local function shape(c, prefix, ctx)
  local api_keys = map_list(ctx.all_keys or {}, function(id, k)
    return { id = id, value = k.value, sha256 = k.sha256 }
  end)
  local listen = {}
  for i, l in ipairs(c.listen) do
    listen[i] = {
      address = l.address, port = l.port, api = l.api,
      tls = l.tls and {
        certificate = resolve(prefix, l.tls.certificate), key = resolve(prefix, l.tls.key),
        unknown_sni = l.tls.unknown_sni,
      },
    }
  end
  return {
    workers = c.workers,
    error_log = { json = c.error_log.format == "json", level = c.error_log.level },
    listen = listen,
    throttle = shape_throttle(c.throttle),
    api_keys = api_keys,
    state_dir = resolve(prefix, c.state_dir),
    backend_ca = c.backend_ca and resolve(prefix, c.backend_ca),
    limits = { max_body_size = c.limits.max_body_size, max_header_size = c.limits.max_header_size },
    timeouts = {
      header = c.timeouts.header, idle = c.timeouts.idle,
      body = c.timeouts.body, shutdown = c.timeouts.shutdown, send = c.timeouts.send,
    },
    tracing = c.tracing and {
      service_name = c.tracing.service_name, request_id_header = c.tracing.request_id_header,
      otlp = c.tracing.otlp and {
        endpoint = c.tracing.otlp.endpoint, sample_ratio = c.tracing.otlp.sample_ratio,
        batch_size = c.tracing.otlp.batch_size, max_queue = c.tracing.otlp.max_queue,
        flush_interval_ms = c.tracing.otlp.flush_interval_ms, timeout_ms = c.tracing.otlp.timeout_ms,
        headers = pairs_list(c.tracing.otlp.headers),
      },
    },
    cluster = c.cluster and {
      node_id = c.cluster.node_id, sync_interval_ms = c.cluster.sync_interval_ms,
      expected_nodes = c.cluster.expected_nodes, key_prefix = c.cluster.key_prefix,
      redis = {
        address = c.cluster.redis.address, port = c.cluster.redis.port,
        password_file = c.cluster.redis.password_file and resolve(prefix, c.cluster.redis.password_file),
        database = c.cluster.redis.database, timeout_ms = c.cluster.redis.timeout_ms,
      },
    },
    domains = map_list(c.domains, function(host, d)
      return shape_domain(host, d, prefix)
    end),
    apis = map_list(c.apis, function(id, a)
      return shape_api(id, a, prefix)
    end),
  }
end

-- The payload format of a Lua integration or REQUEST authorizer: as configured, else
-- the protocol's default (REST APIs "1.0", HTTP APIs "2.0"; WebSocket APIs' events have
-- their own shape). A use carries "1.0" only: without one it is 2.0.
local function payload_format(v, protocol)
  local pfv = v or (protocol == "rest" and "1.0" or "2.0")
  return pfv == "1.0" and pfv or nil
end

-- Adds the policy uses to the shaped configuration `out`: use numbers on stages
-- (waf, access_log.policy), APIs (selector), routes (authorizer, lua integration),
-- the workers' spec (lua_spec), the management listener and the watched files.
local function shape_policies(out, c, ctx)
  local spec = { budget = c.lua.instruction_budget, dirs = policy_dirs(ctx), policies = {}, uses = {} }
  local index = {}
  local watch = { ctx.source }
  local function pid(entry)
    if not index[entry.full] then
      spec.policies[#spec.policies + 1] = { name = entry.name, source = entry.source }
      index[entry.full] = #spec.policies
      watch[#watch + 1] = entry.full
    end
    return index[entry.full]
  end
  local function add(use)
    spec.uses[#spec.uses + 1] = use
    return #spec.uses
  end
  for _, sa in ipairs(out.apis) do
    local a = c.apis[sa.id]
    local api_path = join("apis", sa.id)
    local route_index = {}
    for i, sr in ipairs(sa.routes) do
      route_index[sr.key] = i - 1
    end
    if a.route_selection then
      sa.selector = add({ hook = "select_route", where = join(api_path, "route_selection"),
        policy = pid(a.route_selection._policy), conf = a.route_selection.config, routes = route_index })
    end
    for _, sr in ipairs(sa.routes) do
      local r = a.routes[sr.key]
      local rpath = join(join(api_path, "routes"), sr.key)
      if r.authorizer and a.authorizers[r.authorizer].type ~= "jwt" then
        local az = a.authorizers[r.authorizer]
        sr.authorizer = add({
          hook = "authorize", api = sa.id, name = r.authorizer,
          where = join(join(api_path, "authorizers"), r.authorizer),
          policy = pid(az._policy), conf = az.config, kind = az.kind,
          identity_sources = az.identity_sources, ttl = az.ttl, token_pattern = az.token_pattern,
          shared_cache = az.shared_cache or nil, scopes = r.scopes or {},
          payload_format_version = payload_format(az.payload_format_version, a.protocol),
          rest = a.protocol == "rest" or nil,
        })
      end
      if r.integration.type == "lua" then
        sr.integration.use = add({ hook = "handle", where = join(rpath, "integration"),
          policy = pid(r.integration._policy), conf = r.integration.config,
          timeout_ms = r.integration.timeout_ms,
          payload_format_version = payload_format(r.integration.payload_format_version, a.protocol),
          rest = a.protocol == "rest" or nil })
      elseif r.integration.type == "http" and r.integration.proxy == false then -- h-mapping
        sr.integration.use = add(mapping_conf.use(r.integration, join(rpath, "integration"), pid, ctx.prefix))
      end
    end
    for _, ss in ipairs(sa.stages) do
      local st = a.stages[ss.name]
      local spath = join(join(api_path, "stages"), ss.name)
      if st.waf then
        local rules = {}
        local kctx = { pid = pid, prefix = ctx.prefix, watch = watch, acl = join(spath, "waf"),
          geo = { ipv4 = resolve(ctx.prefix, c.waf_geo.ipv4), ipv6 = resolve(ctx.prefix, c.waf_geo.ipv6) } }
        for i, rule in ipairs(st.waf.rules) do
          rules[#rules + 1] = waf_conf.shape_rule(out, rule, join(join(join(spath, "waf"), "rules"), i), kctx)
          if rule.managed and ss.waf_log then
            waf_conf.shape_log_managed(ss.waf_log, rule, rules[#rules])
          end
        end
        sort(rules, function(x, y) return x.priority < y.priority end)
        ss.waf = add({ hook = "waf", where = join(spath, "waf"), default_action = st.waf.default_action,
          -- its name in GET /metrics, as the WAF log's webaclId ends
          web_acl = "apis." .. sa.id .. ".stages." .. ss.name .. ".waf",
          rules = rules, response = waf_conf.shape_response(out, st.waf.default_response) })
      end
      if st.access_log and st.access_log.policy then
        ss.access_log.policy = add({ hook = "log", where = join(spath, "access_log"),
          policy = pid(st.access_log._policy), conf = st.access_log.config })
      end
    end
  end
  for _, sd in ipairs(out.domains) do
    local m = c.domains[sd.host].mtls
    if m and m.revocation then
      sd.mtls.revocation = add({ hook = "check_cert", where = join(join(join("domains", sd.host), "mtls"), "revocation"),
        policy = pid(m.revocation._policy), conf = m.revocation.config })
      sd.mtls.revocation_ttl = m.revocation.ttl
    end
  end
  if #spec.uses > 0 then
    out.lua_spec = policy_lib.serialize(spec)
  end
  if c.management then
    local token_file, generated = management_token_file(c.management, c.state_dir, ctx.prefix)
    out.management = { address = c.management.address, port = c.management.port,
      token_file = token_file, token_generated = generated }
  end
  out.watch = c.watch
  out.watch_files = watch
end

M.config, M.policies, M.management_token_file = shape, shape_policies, management_token_file

return M
