-- moongate.config.cache: response caching in the configuration, as API Gateway's stage
-- cache has it: a stage's `cache` (size, default TTL, who may invalidate with
-- Cache-Control: max-age=0), per route `route_settings[key].cache` (AWS's method
-- settings: enabled, ttl) and the routes' `cache_key_parameters`. schema.lua takes the
-- fields from here, checks.lua calls check_api, shape.lua calls shape_stage; the gateway
-- builds the stores (runtime/conf/cacheconf.c) and the cache phase uses them
-- (runtime/gw/cache.c).
local type, ipairs = type, ipairs
local format, lower = string.format, string.lower
local concat, sort = table.concat, table.sort
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local validation = require "moongate.config.validation"
local join, fail, sorted_keys = lang.join, lang.fail, lang.sorted_keys
local parse_route_key, parse_parameter = values.parse_route_key, validation.parse_parameter

local M = {}

local STRATEGIES = { "FAIL_WITH_403", "SUCCEED_WITH_RESPONSE_HEADER", "SUCCEED_WITHOUT_RESPONSE_HEADER" }

local ttl_field = {
  type = "integer", between = { 0, 3600 },
  description = "seconds a response is kept (0: not cached)",
}

M.stage_field = {
  type = "record", description = "the stage's response cache, shared by the workers",
  fields = {
    enabled = { type = "boolean", default = true, description = "false: no cache (the settings stay)" },
    size_mb = {
      type = "integer", between = { 1, 65536 }, default = 64,
      description = "megabytes for keys, headers and bodies; least recently used entries go beyond",
    },
    ttl = {
      type = "integer", between = { 0, 3600 }, default = 300,
      description = "seconds a response is kept, for routes without their own (0: routes cache only with a ttl of their own)",
    },
    require_authorization_for_cache_control = {
      type = "boolean", default = true,
      description = "true: only callers allowed to invalidate may refresh an entry with Cache-Control: max-age=0",
    },
    unauthorized_cache_control = {
      type = "string", one_of = STRATEGIES, default = "SUCCEED_WITH_RESPONSE_HEADER",
      description = "what a max-age=0 from a caller not allowed to invalidate gets: 403, or the cached"
        .. " response with or without a Warning header",
    },
    invalidate_keys = {
      type = "list", default = {}, description = "ids of API keys whose callers may invalidate entries",
      elements = { type = "string", non_empty = true, description = "an API key id (api_keys)" },
    },
  },
}

M.route_settings_field = {
  type = "record", description = "the route's cache settings (AWS method settings)",
  fields = {
    enabled = {
      type = "boolean",
      description = "true: every method of the route is cached; false: none (default: GET requests only)",
    },
    ttl = ttl_field,
  },
}

M.key_parameters_field = {
  type = "list", description = "request parameters that are part of the cache key (path parameters always are)",
  elements = {
    type = "string", description = "method.request.{querystring,header,path}.NAME",
    check = function(k)
      local kind, err = parse_parameter(k)
      return not kind and err or nil
    end,
  },
}

-- The route's cache key parameters as written: the route's, then its integration's.
local function key_parameters(r)
  local out = {}
  local lists = { r.cache_key_parameters or false,
    type(r.integration) == "table" and r.integration.cache_key_parameters or false }
  for _, list in ipairs(lists) do
    if type(list) == "table" then
      for _, p in ipairs(list) do
        if type(p) == "string" then -- (an invalid one is reported where it is)
          out[#out + 1] = p
        end
      end
    end
  end
  return out
end

function M.check_api(c, v, path, ctx)
  local ws = c.protocol == "websocket"
  local routes = type(c.routes) == "table" and c.routes or {}
  for _, key in ipairs(sorted_keys(routes)) do
    local r, rpath = routes[key], join(join(path, "routes"), key)
    if type(r) == "table" then
      local where = r.cache_key_parameters and join(rpath, "cache_key_parameters")
        or join(join(rpath, "integration"), "cache_key_parameters")
      if ws and (r.cache_key_parameters or (r.integration and r.integration.cache_key_parameters)) then
        fail(ctx, where, "WebSocket APIs have no response cache")
      elseif not ws then
        local route = parse_route_key(key)
        for _, pk in ipairs(key_parameters(r)) do
          local kind, name = parse_parameter(pk)
          if kind == "path" and route and not route.params[name] then
            fail(ctx, where, format("{%s} is not a path parameter of the route", name))
          end
        end
      end
    end
  end
  local stages = type(c.stages) == "table" and c.stages or {}
  for _, name in ipairs(sorted_keys(stages)) do
    local st, spath = stages[name], join(join(path, "stages"), name)
    if type(st) == "table" then
      local on = st.cache and st.cache.enabled
      if ws and st.cache then
        fail(ctx, join(spath, "cache"), "WebSocket APIs have no response cache")
      end
      for _, key in ipairs(sorted_keys(st.route_settings or {})) do
        local rs = st.route_settings[key]
        if type(rs) == "table" and rs.cache and not on and not ws then
          fail(ctx, join(join(join(spath, "route_settings"), key), "cache"),
            "the stage has no cache (set stages." .. name .. ".cache)")
        end
      end
    end
  end
end

-- The stage's cache in the form runtime/conf/cacheconf.c reads, or nil: its settings,
-- and per route (in the order of the shaped routes) the methods it caches ("get": GET
-- requests only, "all", or "off"), its TTL and its key parameters. `name` says what the
-- entries' keys depend on: a reload whose name and size are the same keeps the entries.
function M.shape_stage(api_path, a, stage_name, st, shaped_routes)
  local cs = st.cache
  if not (cs and cs.enabled) or a.protocol == "websocket" then
    return nil
  end
  local routes, parts = {}, {}
  for i, sr in ipairs(shaped_routes) do
    local r = a.routes[sr.key]
    local rs = st.route_settings and st.route_settings[sr.key]
    rs = rs and rs.cache or {}
    local ttl = rs.ttl or cs.ttl
    local mode = rs.enabled == true and "all" or rs.enabled == false and "off" or "get"
    if ttl == 0 then
      mode = "off"
    end
    local params, seen = {}, {}
    for _, pk in ipairs(key_parameters(r)) do
      local kind, name = parse_parameter(pk)
      if kind == "header" then
        name = lower(name)
      end
      -- path parameters are always in the key; a parameter named twice counts once
      if kind ~= "path" and not seen[kind .. "." .. name] then
        seen[kind .. "." .. name] = true
        params[#params + 1] = { kind = kind, name = name }
      end
    end
    sort(params, function(x, y)
      return x.kind .. "." .. x.name < y.kind .. "." .. y.name
    end)
    local names = {}
    for j, p in ipairs(params) do
      names[j] = p.kind .. "." .. p.name
    end
    routes[i] = { mode = mode, ttl = ttl, params = params }
    parts[#parts + 1] = sr.key .. "=" .. concat(names, ",")
  end
  return {
    name = format("%s|%s|%s", api_path, stage_name, concat(parts, ";")),
    size_mb = cs.size_mb,
    require_authorization = cs.require_authorization_for_cache_control,
    unauthorized = cs.unauthorized_cache_control,
    invalidate_keys = cs.invalidate_keys,
    where = join(join(join(api_path, "stages"), stage_name), "cache"),
    routes = routes,
  }
end

return M
