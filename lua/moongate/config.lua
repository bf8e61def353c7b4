-- moongate.config: loads the gateway configuration file, validates it and
-- returns the normalized table that the C runtime reads.
--
--   local conf, errs = config.load(path, prefix)
--   local conf, errs = config.validate(tbl, { source = "conf/x.lua", prefix = "." })
--
-- The configuration is checked in three steps:
--   1. a declarative schema (every field has a description) walked by one
--      generic walker: types, ranges, enums, unknown keys with "did you mean";
--   2. reference checks that need more than one field (routes against stages,
--      listeners against APIs), attached to schema nodes as `post` functions;
--   3. shaping into the normalized form: maps become lists sorted by key, so
--      the C side sees a deterministic order.
-- Every error is collected; nothing stops at the first one.

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local pcall, error, select, setfenv, setmetatable = pcall, error, select, setfenv, setmetatable
local loadfile, unpack = loadfile, unpack
local io_open = io.open
local sort, concat = table.sort, table.concat
local format, find, sub, match, gsub, lower, byte = string.format, string.find,
  string.sub, string.match, string.gsub, string.lower, string.byte
local floor, min, huge = math.floor, math.min, math.huge
local debug_sethook, debug_gethook = debug.sethook, debug.gethook
local jit = rawget(_G, "jit")
local loaded_modules = package.loaded
local policy_lib = require "moongate.policy" -- it requires this module lazily, not at load

local M = {}

-- Instructions a configuration chunk may execute before it is stopped.
M.instruction_budget = 1e8
local HOOK_STEP = 1000
local BUDGET_EXCEEDED = "configuration did not finish (instruction budget exceeded)"

local METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS" }
local ROUTE_METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY" }

local GATEWAY_RESPONSE_TYPES = {
  "ACCESS_DENIED", "API_CONFIGURATION_ERROR", "AUTHORIZER_CONFIGURATION_ERROR",
  "AUTHORIZER_FAILURE", "BAD_REQUEST", "BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS",
  "DEFAULT_4XX", "DEFAULT_5XX", "EXPIRED_TOKEN", "INTEGRATION_FAILURE",
  "INTEGRATION_TIMEOUT", "INVALID_API_KEY", "INVALID_SIGNATURE",
  "MISDIRECTED_REQUEST", "MISSING_AUTHENTICATION_TOKEN", "QUOTA_EXCEEDED", "REQUEST_HEADERS_TOO_LARGE",
  "REQUEST_TIMEOUT", "REQUEST_TOO_LARGE", "RESOURCE_NOT_FOUND", "THROTTLED",
  "UNAUTHORIZED", "UNSUPPORTED_MEDIA_TYPE", "WAF_FILTERED",
}

local API_ID = "^[A-Za-z0-9_-]+$"
local STAGE_NAME = "^[A-Za-z0-9_-]+$" -- plus "$default", at most 128 bytes
local VARIABLE_NAME = "^[A-Za-z0-9_]+$"
local PARAM_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
local SEGMENT_CHARS = "^[A-Za-z0-9%._~!%$&'%(%)%*%+,;=:@%-]+$"
local HEADER_TOKEN = "^[!#%$%%&'%*%+%.%^_`|~0-9A-Za-z%-]+$"
local HOST_CHARS = "^[A-Za-z0-9%.%-]+$"
local BASE_SEGMENT = "^[A-Za-z0-9%._~%-]+$"

---------------------------------------------------------------------------
-- Small pure helpers
---------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Double-quoted string with C-like escapes, always on one line.
local function quote(s)
  local body = gsub(s, '[%c"\\]', function(c)
    return ESCAPES[c] or format("\\%03d", byte(c))
  end)
  return '"' .. body .. '"'
end

local num = policy_lib.number_text

-- How a value is shown after "got": strings quoted (shortened), numbers as
-- written, tables and functions by their type.
local function show(v)
  local t = type(v)
  if t == "string" then
    if #v > 80 then
      return quote(sub(v, 1, 77)) .. "..."
    end
    return quote(v)
  elseif t == "number" then
    return num(v)
  elseif t == "boolean" or t == "nil" then
    return tostring(v)
  end
  return t
end

local function quoted_list(list)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = quote(v)
  end
  return concat(out, ", ")
end

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then
      return true
    end
  end
  return false
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

-- Keys of a table in a deterministic order: numbers, then strings, then the rest.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return (TYPE_ORDER[ta] or 4) < (TYPE_ORDER[tb] or 4)
    end
    if ta == "number" or ta == "string" then
      return a < b
    end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- Config path of `key` below `path`: `a.b`, `a["GET /x"]`, `a[1]`.
local function join(path, key)
  if type(key) == "string" and find(key, "^[A-Za-z_][A-Za-z0-9_]*$") then
    return path == "" and key or path .. "." .. key
  elseif type(key) == "string" then
    return path .. "[" .. quote(key) .. "]"
  elseif type(key) == "number" or type(key) == "boolean" then
    return path .. "[" .. show(key) .. "]"
  end
  return path .. "[" .. type(key) .. "]"
end

local function levenshtein(a, b)
  local prev = {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    local cur = { [0] = i }
    local ca = byte(a, i)
    for j = 1, #b do
      local cost = ca == byte(b, j) and 0 or 1
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The candidate closest to `word` (case-insensitive): distance at most 2 (and
-- less than the word's length), or one a prefix of the other (3+ characters).
local function suggest(word, candidates)
  if type(word) ~= "string" or word == "" then
    return nil
  end
  local w = lower(word)
  local best, best_d
  for _, c in ipairs(candidates) do
    local lc = lower(c)
    local d = levenshtein(w, lc)
    local close = d <= 2 and d < #w
    local prefix = (#w >= 3 and sub(lc, 1, #w) == w) or (#lc >= 3 and sub(w, 1, #lc) == lc)
    if (close or prefix) and (best_d == nil or d < best_d) then
      best, best_d = c, d
    end
  end
  return best
end

local function did_you_mean(word, candidates)
  local s = suggest(word, candidates)
  return s and format(" (did you mean %s?)", quote(s)) or ""
end

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = deep_copy(x)
  end
  return out
end

local function string_keys(t)
  local out = {}
  if type(t) == "table" then
    for _, k in ipairs(sorted_keys(t)) do
      if type(k) == "string" then
        out[#out + 1] = k
      end
    end
  end
  return out
end

---------------------------------------------------------------------------
-- Value checks used by the schema (each returns an error message or nil)
---------------------------------------------------------------------------

local function is_ipv4(s)
  local octets = { match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #octets ~= 4 then
    return false
  end
  for _, o in ipairs(octets) do
    if #o > 3 or tonumber(o) > 255 or (#o > 1 and sub(o, 1, 1) == "0") then
      return false
    end
  end
  return true
end

-- Number of 16-bit groups in a colon-separated IPv6 part, or nil when malformed;
-- an IPv4 tail counts as two groups.
local function ipv6_groups(part, allow_ipv4_tail)
  if part == "" then
    return 0
  end
  local items = {}
  for g in (part .. ":"):gmatch("([^:]*):") do
    items[#items + 1] = g
  end
  local n = 0
  for i, g in ipairs(items) do
    if allow_ipv4_tail and i == #items and find(g, ".", 1, true) then
      if not is_ipv4(g) then
        return nil
      end
      n = n + 2
    elseif find(g, "^%x%x?%x?%x?$") then
      n = n + 1
    else
      return nil
    end
  end
  return n
end

local function is_ipv6(s)
  if not find(s, ":", 1, true) then
    return false
  end
  local dc = find(s, "::", 1, true)
  if not dc then
    return ipv6_groups(s, true) == 8
  end
  local head, tail = sub(s, 1, dc - 1), sub(s, dc + 2)
  if find(tail, "::", 1, true) then
    return false
  end
  local h, t = ipv6_groups(head, false), ipv6_groups(tail, true)
  return h ~= nil and t ~= nil and h + t <= 7
end

local function address_error(v)
  if not (is_ipv4(v) or is_ipv6(v)) then
    return "must be an IPv4 or IPv6 address literal, got " .. show(v)
  end
end

local function workers_value(v)
  if v == "auto" then
    return 0
  end
  if type(v) == "number" and v == floor(v) and v >= 1 and v <= 256 then
    return v
  end
  return nil, 'must be "auto" or an integer between 1 and 256, got ' .. show(v)
end

local function api_ref_error(id, raw)
  local ids = string_keys(type(raw) == "table" and raw.apis)
  if not contains(ids, id) then
    return "unknown API " .. quote(id) .. did_you_mean(id, ids)
  end
end

local function listener_api_error(v, ctx)
  return api_ref_error(v, ctx.raw)
end

local function host_error(v)
  if not find(v, HOST_CHARS) then
    return 'invalid host name: only letters, digits, "-" and "." are allowed'
  end
  if find(v, "^%.") or find(v, "%.$") or find(v, "..", 1, true) then
    return "invalid host name: empty label"
  end
end

local function strip_slashes(v)
  return (gsub(gsub(v, "^/", ""), "/$", ""))
end

local function base_path_error(v)
  local base = strip_slashes(v)
  if base ~= "" and not find(base, BASE_SEGMENT) then
    return 'invalid base path: must be "" or one path segment of [A-Za-z0-9._~-]'
  end
end

local function is_stage_name(s)
  return s == "$default" or (#s <= 128 and find(s, STAGE_NAME) ~= nil)
end

-- "api" or "api/stage" → api, stage (stage may be nil); nil when malformed.
local function parse_target(v)
  local api, stage = match(v, "^([^/]*)/(.*)$")
  api = api or v
  if not find(api, API_ID) or (stage and not is_stage_name(stage)) then
    return nil
  end
  return api, stage
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

local function stage_name_error(v)
  if not is_stage_name(v) then
    return 'invalid stage name: must be "$default" or match [A-Za-z0-9_-]{1,128}'
  end
end

local function header_value_error(v)
  if find(v, "[%z\r\n]") then
    return "must not contain CR, LF or NUL"
  end
end

-- Parses a route key. Returns { method, path, params = set, shape } (method
-- and path nil for "$default"), or nil and the reason.
local function parse_route_key(key)
  if key == "$default" then
    return { params = {}, shape = "$default" }
  end
  local method, path = match(key, "^([^ ]*) ([^ ]*)$")
  if not method then
    return nil, 'must be "METHOD /path" or "$default" (one space between method and path)'
  end
  if not contains(ROUTE_METHODS, method) then
    return nil, format("method %s must be one of %s", quote(method), concat(ROUTE_METHODS, " "))
  end
  if sub(path, 1, 1) ~= "/" then
    return nil, format("path %s must start with \"/\"", quote(path))
  end
  local params, shape = {}, {}
  if path ~= "/" then
    if sub(path, -1) == "/" then
      return nil, "path must not end with \"/\""
    end
    local segments = {}
    for seg in (sub(path, 2) .. "/"):gmatch("([^/]*)/") do
      segments[#segments + 1] = seg
    end
    for i, seg in ipairs(segments) do
      local inner = match(seg, "^{([^{}]*)}$")
      if seg == "" then
        return nil, "path must not contain empty segments"
      elseif inner then
        local name, greedy = match(inner, "^(.-)(%+?)$")
        if not find(name, PARAM_NAME) then
          return nil, format("parameter name %s must match [A-Za-z_][A-Za-z0-9_]*", quote(name))
        elseif greedy ~= "" and i < #segments then
          return nil, format("greedy variable {%s+} must be the last segment", name)
        elseif params[name] then
          return nil, format("duplicate path parameter {%s}", name)
        end
        params[name] = true
        shape[i] = greedy ~= "" and "{+}" or "{}"
      elseif find(seg, "[{}]") then
        return nil, format("segment %s mixes literal text and a {parameter}", quote(seg))
      elseif seg == "." or seg == ".." then
        return nil, format("segment %s is not allowed", quote(seg))
      elseif not find(seg, SEGMENT_CHARS) then
        return nil, format("segment %s has characters outside [A-Za-z0-9._~!$&'()*+,;=:@-]", quote(seg))
      else
        shape[i] = seg
      end
    end
  end
  return { method = method, path = path, params = params, shape = method .. " /" .. concat(shape, "/") }
end

local function route_key_error(v)
  local _, err = parse_route_key(v)
  return err
end

-- `${stageVariables.NAME}` references in a URI template, or nil and a reason.
local function uri_stage_variables(uri)
  local names = {}
  for inner in uri:gmatch("%${([^}]*)}") do
    local name = match(inner, "^stageVariables%.([A-Za-z0-9_]+)$")
    if not name then
      return nil, format("unsupported substitution %s (use ${stageVariables.NAME})", quote("${" .. inner .. "}"))
    end
    names[#names + 1] = name
  end
  if find(gsub(uri, "%${[^}]*}", ""), "${", 1, true) then
    return nil, 'has "${" without a closing "}"'
  end
  return names
end

local function url_error(url)
  local rest = match(url, "^https?://(.*)$")
  if not rest then
    return "must be an http(s) URL, got " .. show(url)
  end
  local host = gsub(gsub(match(rest, "^[^/?#]*"), "^.*@", ""), ":%d*$", "")
  if host == "" then
    return "must have a host, got " .. show(url)
  end
end

local function uri_error(v)
  local _, err = uri_stage_variables(v)
  if err then
    return err
  end
  if find(v, "^%${stageVariables%.") then
    return nil -- checked per stage once the stages are known (see check_api)
  end
  return url_error(v)
end

local function expand_stage_variables(uri, variables)
  local missing
  local out = gsub(uri, "%${stageVariables%.([A-Za-z0-9_]+)}", function(name)
    if variables[name] == nil then
      missing = missing or name
      return ""
    end
    return variables[name]
  end)
  if missing then
    return nil, missing
  end
  return out
end

-- Resolves a relative file path against the prefix directory.
local function resolve(prefix, path)
  if sub(path, 1, 1) == "/" or prefix == nil or prefix == "." then
    return path
  end
  return gsub(prefix, "/+$", "") .. "/" .. path
end

local function dir_exists(dir)
  local f = io_open(dir .. "/.", "r")
  if f then
    f:close()
    return true
  end
  return false
end

-- A file the gateway reads (certificate, key, truststore, CRL) must exist.
local function file_error(v, ctx)
  local f = io_open(resolve(ctx.prefix, v), "r")
  if not f then
    return format("file %s cannot be read", quote(resolve(ctx.prefix, v)))
  end
  f:close()
end

-- $context templates are compiled, and certificates loaded, by the gateway
-- (runtime/conf/template.c, base/tls.c). Inside moongate the validator asks it through
-- moongate.native, so that such errors are reported with every other error; without
-- it (busted) the gateway reports them when it builds the configuration.
local function template_error(v)
  local native = loaded_modules["moongate.native"]
  if native then
    return native.template_error(v)
  end
end

-- A certificate and key the gateway would refuse (unreadable PEM, key mismatch, weak).
local function certificate_pair_error(c, ctx)
  local native = loaded_modules["moongate.native"]
  if native and c.certificate and c.key then
    return native.tls_error(resolve(ctx.prefix, c.certificate), resolve(ctx.prefix, c.key))
  end
end

local function log_path_error(v, ctx)
  if sub(v, -1) == "/" then
    return "must name a file, got " .. show(v)
  end
  local full = resolve(ctx.prefix, v)
  local dir = match(full, "^(.*)/[^/]*$")
  if dir == nil then
    dir = "."
  end
  if not dir_exists(dir == "" and "/" or dir) then
    return format("directory %s does not exist", quote(dir))
  end
end

---------------------------------------------------------------------------
-- Reference checks that span several fields (schema `post` functions).
-- They see the checked value `c` (defaults applied, invalid parts nil) and
-- the raw value `v` as written.
---------------------------------------------------------------------------

local function fail(ctx, path, msg)
  local errs = ctx.errs
  errs[#errs + 1] = path == "" and format("%s: %s", ctx.source, msg)
    or format("%s: %s: %s", ctx.source, path, msg)
  return nil
end

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

local function hex64_error(v)
  if not find(v, "^[0-9a-fA-F]+$") or #v ~= 64 then
    return "must be 64 hexadecimal digits (a SHA-256 digest)"
  end
end

local function api_key_value_error(v)
  if #v < 20 or #v > 128 then
    return format("must be 20 to 128 characters long, got %d", #v)
  end
  if find(v, "[%c%s]") then
    return "must not contain spaces or control characters"
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

local function check_api(c, v, path, ctx)
  check_throttle_refs(c, path, ctx)
  check_route_authorizers(c, path, ctx)
  if type(v.routes) ~= "table" or type(c.routes) ~= "table" then
    return
  end
  local seen = {}
  local routes_path = join(path, "routes")
  for _, key in ipairs(string_keys(v.routes)) do
    local route = parse_route_key(key)
    local rpath = join(routes_path, key)
    if route then
      if seen[route.shape] then
        fail(ctx, rpath, "conflicts with " .. quote(seen[route.shape]))
      else
        seen[route.shape] = key
      end
      local integration = c.routes[key] and c.routes[key].integration
      if integration and integration.type == "http" and integration.uri then
        local upath = join(join(rpath, "integration"), "uri")
        check_uri_params(integration.uri, route.params, upath, ctx)
        check_uri_stages(integration.uri, c.stages, upath, ctx)
      end
    end
  end
end

---------------------------------------------------------------------------
-- The schema. Node types: string, integer, number, boolean, record (fixed
-- fields), map (keys + values), list, variant (record chosen by a tag field),
-- custom (own validate function). Optional: required, default, description,
-- check(value, ctx) -> err, normalize(value), post(checked, raw, path, ctx).
---------------------------------------------------------------------------

local function headers_map(description)
  return {
    type = "map", default = {}, description = description,
    keys = {
      type = "string", pattern = HEADER_TOKEN, description = "header name (an HTTP token)",
      pattern_message = "invalid header name: must be an HTTP token",
      normalize = lower, duplicate = "header",
    },
    values = { type = "string", check = header_value_error, description = "header value" },
  }
end

local http_integration = {
  type = "record", description = "HTTP proxy integration",
  fields = {
    type = { type = "string", one_of = { "http" }, description = 'integration type "http"' },
    uri = {
      type = "string", required = true, check = uri_error,
      description = "http:// or https:// URL template with {param}, {param+} and ${stageVariables.NAME}",
    },
    method = { type = "string", one_of = METHODS, description = "method sent to the backend (default: the request's)" },
    timeout_ms = {
      type = "integer", between = { 50, 29000 }, default = 29000,
      description = "backend timeout in milliseconds (connect + response head, and between body reads)",
    },
  },
}

local mock_integration = {
  type = "record", description = "mock integration: a fixed response",
  fields = {
    type = { type = "string", one_of = { "mock" }, description = 'integration type "mock"' },
    status = { type = "integer", between = { 100, 599 }, default = 200, description = "response status" },
    headers = headers_map("response headers"),
    body = { type = "string", default = "", description = "response body" },
  },
}

local throttle_settings = {
  type = "record", description = "a token bucket: rate requests/second refilled continuously, burst capacity",
  fields = {
    rate = {
      type = "number", above = 0, at_most = 1e6, required = true,
      description = "steady requests per second (fractions allowed, at most 1,000,000)",
    },
    burst = {
      type = "integer", between = { 0, 1e9 }, required = true,
      description = "bucket capacity: requests allowed at once after an idle period",
    },
  },
}

-- The refill window burst / rate must fit the nanosecond clock comfortably.
local function check_throttle(c, _, path, ctx)
  if c.rate and c.burst and c.burst / c.rate > 1e7 then
    fail(ctx, path, format("burst / rate must be at most 10000000 seconds (the time to refill), got %s",
      num(c.burst / c.rate)))
  end
end
throttle_settings.post = check_throttle

local function route_settings(description)
  return {
    type = "map", default = {}, description = description,
    keys = { type = "string", check = route_key_error, description = "a route key of the API" },
    values = {
      type = "record", description = "settings of one route",
      fields = { throttle = throttle_settings },
    },
  }
end

-- An API key: its value, or only the SHA-256 of its value so that the
-- configuration holds no secret.
local function check_api_key(c, v, path, ctx)
  if type(v) == "table" and (v.value == nil) == (v.sha256 == nil) then
    fail(ctx, path, 'needs exactly one of "value" and "sha256"')
  end
end

local api_key = {
  type = "record", description = "an API key", post = check_api_key,
  fields = {
    value = { type = "string", check = api_key_value_error, description = "the key (20 to 128 characters)" },
    sha256 = { type = "string", check = hex64_error, normalize = lower,
      description = "hex SHA-256 digest of the key, instead of value" },
    description = { type = "string", description = "free text" },
  },
}

local usage_plan = {
  type = "record", description = "a usage plan: throttle and quota per API key",
  fields = {
    throttle = throttle_settings,
    quota = {
      type = "record", description = "requests allowed per period and key",
      fields = {
        limit = { type = "integer", between = { 1, 2 ^ 40 }, required = true, description = "requests per period" },
        period = { type = "string", one_of = { "day", "week", "month" }, required = true,
          description = "day (from 00:00 UTC), week (from Monday 00:00 UTC) or month (from the 1st, 00:00 UTC)" },
        offset = { type = "integer", between = { 0, 2 ^ 40 }, default = 0,
          description = "requests subtracted from the limit in the first period" },
      },
    },
    keys = {
      type = "list", required = true, non_empty = true, description = "ids of the API keys in the plan",
      elements = { type = "string", non_empty = true, description = "an API key id" },
    },
    stages = {
      type = "list", description = "stages the plan covers (default: every stage of the API)",
      elements = { type = "string", non_empty = true, description = "a stage name" },
    },
    route_settings = route_settings("per-route throttle for each key of the plan"),
  },
}

---------------------------------------------------------------------------
-- Lua policies: WAF rules, authorizers, route selection, Lua integrations and
-- log policies. A policy use names a file (`policy`, or `handler` for
-- integrations) and its `config`; the file is loaded here the way the workers
-- load it (moongate.policy), must have the hook its use needs, and `config` is
-- validated against the policy's `schema`.
---------------------------------------------------------------------------

-- Directories `require` searches from a policy: <prefix>/policies and lua.path.
local function policy_dirs(ctx)
  local dirs = { resolve(ctx.prefix, "policies") }
  local raw = type(ctx.raw) == "table" and type(ctx.raw.lua) == "table" and ctx.raw.lua.path
  if type(raw) == "table" then
    for _, d in ipairs(raw) do
      if type(d) == "string" then
        dirs[#dirs + 1] = resolve(ctx.prefix, d)
      end
    end
  end
  return dirs
end

-- Loads a policy file once per validation: { name, full, source, mod } or nil, err.
local function load_policy(ctx, name)
  ctx.policies = ctx.policies or {}
  local full = resolve(ctx.prefix, name)
  local entry = ctx.policies[full]
  if entry == nil then
    if not ctx.searcher_installed then
      policy_lib.install_searcher(policy_dirs(ctx))
      ctx.searcher_installed = true
    end
    local source, err = policy_lib.read_file(full)
    if not source then
      entry = { err = format("cannot read %s: %s", quote(full), tostring(err)) }
    else
      local mod, lerr = policy_lib.load_source(source, name)
      entry = mod and { name = name, full = full, source = source, mod = mod } or { err = lerr }
    end
    ctx.policies[full] = entry
  end
  if entry.err then
    return nil, entry.err
  end
  return entry
end

local USE_NAMES = {
  authorizer = "an authorizer", waf = "a WAF rule", log = "a log policy",
  route_selection = "a route selector", integration = "a Lua integration",
  revocation = "a revocation check",
}

-- A schema `post` for a record naming a policy in `field`: loads it, checks that it
-- has the hook `kind` needs, validates and normalizes `config`.
local function policy_use(kind, field)
  field = field or "policy"
  return function(c, v, path, ctx)
    if c[field] == nil or (c.config == nil and v.config ~= nil) then
      return -- reported already
    end
    local entry, err = load_policy(ctx, c[field])
    if not entry then
      return fail(ctx, join(path, field), err)
    end
    local hook = policy_lib.HOOKS[kind]
    if type(entry.mod[hook]) ~= "function" then
      return fail(ctx, join(path, field), format("%s has no %s function, which %s needs",
        quote(c[field]), hook, USE_NAMES[kind]))
    end
    local conf, errs = policy_lib.check_conf(entry.mod, v.config, join(path, "config"), ctx.source, c[field])
    if not conf then
      for _, e in ipairs(errs) do
        ctx.errs[#ctx.errs + 1] = e
      end
      return
    end
    local _, serr = policy_lib.serialize(conf)
    if serr then
      return fail(ctx, join(path, "config"), "must hold only strings, numbers, booleans and tables, found " .. serr)
    end
    local prepared, perr = policy_lib.prepare(entry.mod, conf)
    if prepared == nil then
      return fail(ctx, join(path, "config"), perr)
    end
    c.config = conf
    c._policy = entry
  end
end

local function policy_field(description)
  return {
    type = "string", non_empty = true, required = true,
    description = description .. " (a Lua file; relative paths are resolved against the prefix)",
  }
end

local policy_config = {
  type = "custom", description = "the policy's configuration, validated by its schema",
  validate = function(v)
    if type(v) ~= "table" then
      return nil, "must be a table, got " .. show(v)
    end
    return v
  end,
}

-- Lua reports a malformed pattern only where matching reaches it: try subjects that
-- take it far (the pattern itself, and as many letters).
local function lua_pattern_error(v)
  for _, subject in ipairs({ v, string.rep("x", #v), "" }) do
    local ok, err = pcall(find, subject, v)
    if not ok then
      return "invalid Lua pattern: " .. gsub(tostring(err), "^.-:%d+: ", "")
    end
  end
end

local function identity_source_error(v)
  local kind = match(v, "^%$request%.(%a+)%.[^%s]+$")
  if kind == "header" or kind == "querystring" then
    return nil
  end
  local name = match(v, "^%$context%.(.+)$")
  if name then
    if not require("moongate.request").is_context_variable(name) then
      return "unknown variable $context." .. name
    end
    return nil
  end
  if find(v, "^%$stageVariables%.[A-Za-z0-9_]+$") then
    return nil
  end
  return "must be $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME, got "
    .. show(v)
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
  check_lua_use(c, v, path, ctx)
end

local lua_authorizer = {
  type = "record", description = "a Lua authorizer (REQUEST or TOKEN, as Lambda authorizers)",
  post = check_authorizer,
  fields = {
    type = { type = "string", one_of = { "lua" }, description = 'authorizer type "lua"' },
    policy = policy_field("the policy whose authorize(req, conf, auth) decides"),
    config = policy_config,
    kind = {
      type = "string", one_of = { "REQUEST", "TOKEN" }, default = "REQUEST",
      description = "REQUEST: the hook sees the whole request; TOKEN: one token (auth.token)",
    },
    identity_sources = {
      type = "list", description = "values that must be present (else 401) and key the cache",
      elements = { type = "string", check = identity_source_error, description = "an identity source" },
    },
    ttl = {
      type = "integer", between = { 0, 3600 }, default = 300,
      description = "seconds a decision is cached per identity (0: no cache)",
    },
    token_pattern = {
      type = "string", check = lua_pattern_error,
      description = "TOKEN: a Lua pattern the token must match (else 401 without running the policy)",
    },
  },
}

local authorizer = {
  type = "variant", tag = "type", variants = { lua = lua_authorizer }, unsupported = { jwt = true },
  description = "an authorizer",
}

local lua_integration = {
  type = "record", description = "Lua integration: a policy's handle(event, conf) answers",
  post = policy_use("integration", "handler"),
  fields = {
    type = { type = "string", one_of = { "lua" }, description = 'integration type "lua"' },
    handler = policy_field("the policy whose handle(event, conf) answers"),
    config = policy_config,
    timeout_ms = {
      type = "integer", between = { 50, 29000 }, default = 29000,
      description = "deadline of the handler's HTTP calls, in milliseconds",
    },
  },
}

local function check_waf(c, _, path, ctx)
  local priorities, names = {}, {}
  for i, rule in ipairs(c.rules or {}) do
    if rule then
      local rpath = join(join(path, "rules"), i)
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

local waf_rule = {
  type = "record", description = "a web ACL rule", post = policy_use("waf"),
  fields = {
    name = {
      type = "string", pattern = API_ID, pattern_message = "invalid rule name: must match [A-Za-z0-9_-]+",
      description = "the rule's name in $context.waf.rule (default: the policy file's name)",
    },
    priority = {
      type = "integer", between = { 0, 2 ^ 31 }, required = true,
      description = "evaluation order, lowest first; unique within the web ACL",
    },
    policy = policy_field("the policy whose inspect(req, conf) says whether the rule matches"),
    config = policy_config,
    action = {
      type = "string", one_of = { "allow", "block", "count" }, required = true,
      description = "on a match: allow and block end the evaluation, count records it and goes on",
    },
  },
}

local waf = {
  type = "record", description = "the stage's web ACL", post = check_waf,
  fields = {
    default_action = {
      type = "string", one_of = { "allow", "block" }, default = "allow",
      description = "what happens when no allow or block rule matches",
    },
    rules = { type = "list", default = {}, elements = waf_rule, description = "the rules" },
  },
}

local route_selection = {
  type = "record", description = "a route selector policy", post = policy_use("route_selection"),
  fields = {
    policy = policy_field("the policy whose select_route(req, conf) returns a route key"),
    config = policy_config,
  },
}

local check_log_use = policy_use("log")

local function check_access_log(c, v, path, ctx)
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

local management = {
  type = "record", description = "the management listener (POST /reload)", post = check_management,
  fields = {
    address = {
      type = "string", default = "127.0.0.1", check = address_error,
      description = "bind address (keep it on loopback or a private network)",
    },
    port = { type = "integer", between = { 1, 65535 }, required = true, description = "bind port" },
    token_file = {
      type = "string", non_empty = true,
      description = "file holding the bearer token every management request must send "
        .. "(default: state_dir/management.token, generated when missing)",
    },
  },
}

-- The token file of the management listener m (raw or validated): the configured one
-- or state_dir/management.token, resolved against the prefix. The gateway and the
-- command line (M.management) must agree on it.
local function management_token_file(m, state_dir, prefix)
  if type(m.token_file) == "string" then
    return resolve(prefix, m.token_file), false
  end
  return resolve(prefix, (type(state_dir) == "string" and state_dir or "state") .. "/management.token"), true
end

local lua_settings = {
  type = "record", default = {}, description = "how Lua policies run",
  fields = {
    path = {
      type = "list", default = {}, description = "more directories `require` searches (after policies/)",
      elements = { type = "string", non_empty = true, description = "a directory" },
    },
    instruction_budget = {
      type = "integer", between = { 1000, 1e10 }, default = policy_lib.default_budget,
      description = "steps (loop iterations and function calls) one hook call may take",
    },
  },
}

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
      if r.authorizer then
        local az = a.authorizers[r.authorizer]
        sr.authorizer = add({
          hook = "authorize", api = sa.id, name = r.authorizer,
          where = join(join(api_path, "authorizers"), r.authorizer),
          policy = pid(az._policy), conf = az.config, kind = az.kind,
          identity_sources = az.identity_sources, ttl = az.ttl, token_pattern = az.token_pattern,
          scopes = r.scopes or {},
        })
      end
      if r.integration.type == "lua" then
        sr.integration.use = add({ hook = "handle", where = join(rpath, "integration"),
          policy = pid(r.integration._policy), conf = r.integration.config,
          timeout_ms = r.integration.timeout_ms })
      end
    end
    for _, ss in ipairs(sa.stages) do
      local st = a.stages[ss.name]
      local spath = join(join(api_path, "stages"), ss.name)
      if st.waf then
        local rules = {}
        for _, rule in ipairs(st.waf.rules) do
          rules[#rules + 1] = { name = rule.name, priority = rule.priority, action = rule.action,
            policy = pid(rule._policy), conf = rule.config }
        end
        sort(rules, function(x, y) return x.priority < y.priority end)
        ss.waf = add({ hook = "waf", where = join(spath, "waf"), default_action = st.waf.default_action,
          rules = rules })
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

local route = {
  type = "record", description = "a route",
  fields = {
    api_key_required = {
      type = "boolean", default = false,
      description = "true: callers must present an API key (x-api-key or an authorizer's usageIdentifierKey)",
    },
    integration = {
      type = "variant", tag = "type", required = true,
      variants = { http = http_integration, mock = mock_integration, lua = lua_integration },
      description = "what answers the route: an http proxy, a mock or a Lua handler",
    },
    authorizer = { type = "string", non_empty = true, description = "name of the API's authorizer that guards the route" },
    scopes = {
      type = "list", max_entries = 10, description = "scopes the route requires, given to the authorizer (auth.scopes)",
      elements = { type = "string", non_empty = true, description = "a scope" },
    },
  },
}

local gateway_response = {
  type = "record", description = "a customized gateway response",
  fields = {
    status = { type = "integer", between = { 100, 599 }, description = "replaces the type's default status" },
    headers = headers_map('extra response headers; "$request.header.NAME" copies a request header'),
    body = { type = "string", check = template_error, description = "body template with $context.* and $stageVariables.*" },
  },
}

local stage = {
  type = "record", description = "a stage of an API",
  fields = {
    variables = {
      type = "map", default = {}, max_entries = 100,
      description = "stage variables (at most 100), usable as ${stageVariables.NAME}",
      keys = {
        type = "string", pattern = VARIABLE_NAME, description = "variable name",
        pattern_message = "invalid variable name: must match [A-Za-z0-9_]+",
      },
      values = { type = "string", numbers = true, description = "variable value (numbers are converted)" },
    },
    throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "the default limit of each route: every route without a route_settings throttle"
        .. " gets its own bucket with this rate and burst",
    },
    shared_throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "one limit shared by every route of the stage (on top of each route's own)",
    },
    route_settings = route_settings("per-route settings of the stage (throttle replaces the stage's for that route)"),
    client_certificate = {
      type = "record", description = "certificate presented to https backends (backend mutual TLS)",
      post = function(c, v, path, ctx)
        if type(v) == "table" and (v.generate == true) == (v.certificate ~= nil or v.key ~= nil) then
          fail(ctx, path, 'needs "certificate" and "key", or "generate = true"')
        elseif type(v) == "table" and not v.generate and (v.certificate == nil or v.key == nil) then
          fail(ctx, path, 'needs both "certificate" and "key"')
        end
      end,
      fields = {
        certificate = { type = "string", check = file_error, description = "PEM certificate (and chain)" },
        key = { type = "string", check = file_error, description = "PEM private key" },
        generate = { type = "boolean", default = false,
          description = "true: a self-signed certificate valid 365 days, kept in state_dir/client-certs" },
      },
    },
    rate_limit_headers = {
      type = "boolean", default = true,
      description = "send RateLimit-Policy / RateLimit headers on throttled routes",
    },
    waf = waf,
    access_log = {
      type = "record", description = "access log: one line per request", post = check_access_log,
      fields = {
        policy = {
          type = "string", non_empty = true,
          description = "a log policy whose log(ctx, conf) returns the line, or $context.custom values for format",
        },
        config = policy_config,
        path = {
          type = "string", required = true, non_empty = true, check = log_path_error,
          description = "log file; relative paths are resolved against the prefix; its directory must exist",
        },
        format = {
          type = "string", non_empty = true, max_len = 3072, check = template_error,
          description = "$context template of a line (at most 3072 bytes)",
        },
      },
    },
  },
}

local api = {
  type = "record", description = "an API", post = check_api,
  fields = {
    protocol = {
      type = "string", one_of = { "http" }, unsupported = { rest = true, websocket = true },
      default = "http", description = 'API type; only "http" for now',
    },
    default_endpoint = {
      type = "boolean", default = true,
      description = "false: reachable only through a custom domain",
    },
    stages = {
      type = "map", required = true, non_empty = true, description = "stages by name",
      keys = { type = "string", check = stage_name_error, description = 'stage name: "$default" or [A-Za-z0-9_-]{1,128}' },
      values = stage,
    },
    routes = {
      type = "map", required = true, non_empty = true, description = "routes by route key",
      keys = { type = "string", check = route_key_error, description = 'route key: "METHOD /path" or "$default"' },
      values = route,
    },
    authorizers = {
      type = "map", default = {}, description = "authorizers by name, for routes' `authorizer`",
      keys = { type = "string", pattern = API_ID, description = "authorizer name",
        pattern_message = "invalid authorizer name: must match [A-Za-z0-9_-]+" },
      values = authorizer,
    },
    route_selection = route_selection,
    usage_plans = {
      type = "map", default = {}, description = "usage plans by name",
      keys = { type = "string", pattern = API_ID, description = "plan name",
        pattern_message = "invalid plan name: must match [A-Za-z0-9_-]+" },
      values = usage_plan,
    },
    gateway_responses = {
      type = "map", default = {}, description = "customized gateway responses by type",
      keys = {
        type = "string", one_of = GATEWAY_RESPONSE_TYPES, description = "gateway response type",
        enum_message = "unknown gateway response type",
      },
      values = gateway_response,
    },
  },
}

local listener_tls = {
  type = "record", description = "TLS on this listener (TLS 1.2 and 1.3, ALPN http/1.1)",
  fields = {
    certificate = { type = "string", required = true, check = file_error,
      description = "PEM certificate (then its chain) served when no domain's certificate matches the SNI" },
    key = { type = "string", required = true, check = file_error, description = "PEM private key" },
    unknown_sni = { type = "string", one_of = { "default", "reject" }, default = "default",
      description = '"default": serve the listener certificate to unknown names; "reject": fail the handshake' },
  },
}

listener_tls.post = function(c, _, path, ctx)
  local err = certificate_pair_error(c, ctx)
  if err then
    fail(ctx, path, err)
  end
end

local listener = {
  type = "record", description = "a listening socket",
  fields = {
    tls = listener_tls,
    address = {
      type = "string", default = "127.0.0.1", check = address_error,
      description = "bind address (IPv4 or IPv6 literal)",
    },
    port = { type = "integer", between = { 1, 65535 }, required = true, description = "bind port" },
    api = {
      type = "string", check = listener_api_error,
      description = "API whose default endpoint this listener serves",
    },
  },
}

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

local domain = {
  type = "record", description = "a custom domain name", post = check_domain,
  fields = {
    certificate = { type = "string", check = file_error,
      description = "PEM certificate (then its chain) served on TLS listeners when the SNI names this domain" },
    key = { type = "string", check = file_error, description = "PEM private key" },
    mtls = {
      type = "record", description = "mutual TLS: clients must present a certificate the truststore vouches for",
      fields = {
        truststore = { type = "string", required = true, check = file_error,
          description = "PEM bundle of the CA certificates that issue client certificates (chain depth <= 4)" },
        crl = { type = "string", check = file_error,
          description = "PEM file of CRLs, checked for every chain element that has one" },
        mode = { type = "string", one_of = { "require", "request" }, default = "require",
          description = '"require": no valid certificate, no handshake; "request": the certificate is optional' },
        revocation = {
          type = "record", post = policy_use("revocation"),
          description = "a Lua policy whose check(cert, conf) allows or denies each client certificate",
          fields = {
            policy = policy_field("revocation check policy"),
            config = policy_config,
            ttl = { type = "integer", between = { 0, 86400 }, default = 300,
              description = "seconds a verdict is cached per certificate fingerprint (0: every handshake)" },
          },
        },
        version = { type = "integer", between = { 1, 1e6 },
          description = "serve this recorded truststore version (state_dir/truststores/HOST/vN.pem)" },
        forward_header = { type = "string", pattern = HEADER_TOKEN, normalize = lower,
          pattern_message = "invalid header name: must be an HTTP token",
          description = "send the client certificate (URL-encoded PEM) to HTTP backends in this header" },
      },
    },
    mappings = {
      type = "map", required = true, non_empty = true,
      description = 'API mappings: base path ("" or one segment) to "api" or "api/stage"',
      keys = {
        type = "string", check = base_path_error, normalize = strip_slashes,
        description = 'base path: "" or one path segment', duplicate = "base path",
      },
      values = { type = "string", check = mapping_target_error, description = '"api" or "api/stage"' },
    },
  },
}

M.schema = {
  type = "record", description = "the gateway configuration", post = check_root,
  fields = {
    workers = {
      type = "custom", validate = workers_value, default = "auto",
      description = 'worker threads: "auto" (one per core) or 1..256',
    },
    listen = {
      type = "list", non_empty = true, elements = listener, post = check_listeners,
      default = { { address = "127.0.0.1", port = 8080 } },
      description = "where to accept HTTP connections",
    },
    domains = {
      type = "map", default = {}, description = "custom domain names selected by the Host header",
      keys = {
        type = "string", check = host_error, normalize = lower,
        description = "host name (lower-cased)", duplicate = "host",
      },
      values = domain,
    },
    apis = {
      type = "map", required = true, non_empty = true, description = "the APIs by id",
      keys = {
        type = "string", pattern = API_ID, description = "API id",
        pattern_message = "invalid API id: must match [A-Za-z0-9_-]+",
      },
      values = api,
    },
    throttle = {
      type = "record", fields = throttle_settings.fields, post = check_throttle,
      description = "gateway-wide (account) limit shared by every API; none when absent",
    },
    api_keys = {
      type = "map", default = {}, description = "API keys by id",
      keys = { type = "string", pattern = API_ID, description = "key id",
        pattern_message = "invalid key id: must match [A-Za-z0-9_-]+" },
      values = api_key,
    },
    api_keys_file = {
      type = "string", non_empty = true,
      description = 'file of more API keys, one per line: "id value" or "id sha256:HEX"',
    },
    backend_ca = {
      type = "string", check = file_error,
      description = "PEM bundle that https backends' certificates are verified against (default: the system store)",
    },
    state_dir = {
      type = "string", non_empty = true, default = "state",
      description = "directory for state that survives restarts (quota counters); created if missing",
    },
    limits = {
      type = "record", default = {}, description = "request size limits",
      fields = {
        max_body_size = {
          type = "integer", between = { 0, 2 ^ 40 }, default = 10485760,
          description = "largest request body in bytes (413 beyond)",
        },
        max_header_size = {
          type = "integer", between = { 1024, 65536 }, default = 10240,
          description = "largest request line + headers in bytes (431 beyond)",
        },
      },
    },
    management = management,
    watch = {
      type = "boolean", default = false,
      description = "reload when the configuration file or a policy file changes",
    },
    lua = lua_settings,
    timeouts = {
      type = "record", default = {}, description = "client-side timeouts in seconds",
      fields = {
        header = { type = "number", above = 0, at_most = 86400, default = 10, description = "time to receive a request head" },
        idle = { type = "number", above = 0, at_most = 86400, default = 60, description = "keep-alive idle time" },
        body = { type = "number", above = 0, at_most = 86400, default = 30, description = "time between two body reads" },
        shutdown = { type = "number", above = 0, at_most = 86400, default = 10, description = "graceful shutdown bound" },
        send = {
          type = "number", above = 0, at_most = 86400, default = 60,
          description = "time a client may take to accept more of a response",
        },
      },
    },
  },
}

---------------------------------------------------------------------------
-- The walker: walk(schema, value, path, ctx) returns the checked value (nil
-- when invalid) and appends every error to ctx.errs.
---------------------------------------------------------------------------

local kinds = {}

local function walk(s, v, path, ctx)
  if v == nil then
    if s.required then
      return fail(ctx, path, "is required")
    end
    if s.default == nil then
      return nil
    end
    v = deep_copy(s.default)
  end
  local out = kinds[s.type](s, v, path, ctx)
  -- Strings run check(value) among their own checks; every other type runs it here.
  if out ~= nil and s.check and s.type ~= "string" then
    local err = s.check(out, ctx)
    if err then
      return fail(ctx, path, err)
    end
  end
  return out
end

local function field_names(s)
  local names = {}
  for name in pairs(s.fields) do
    names[#names + 1] = name
  end
  sort(names)
  return names
end

local function string_error(s, v, ctx)
  if s.unsupported and s.unsupported[v] then
    return quote(v) .. " is not supported yet"
  end
  if s.one_of and not contains(s.one_of, v) then
    local msg = s.enum_message or ("must be one of " .. quoted_list(s.one_of) .. ", got " .. show(v))
    return msg .. did_you_mean(v, s.one_of)
  end
  if s.non_empty and v == "" then
    return "must not be empty"
  end
  if s.max_len and #v > s.max_len then
    return format("must be at most %d bytes, got %d", s.max_len, #v)
  end
  if s.pattern and not find(v, s.pattern) then
    return s.pattern_message or format("must match the pattern %s, got %s", quote(s.pattern), show(v))
  end
  if s.check then
    return s.check(v, ctx)
  end
end

function kinds.string(s, v, path, ctx)
  if type(v) == "number" and s.numbers then
    v = tostring(v)
  end
  if type(v) ~= "string" then
    return fail(ctx, path, "must be a string, got " .. show(v))
  end
  local err = string_error(s, v, ctx)
  if err then
    return fail(ctx, path, err)
  end
  return s.normalize and s.normalize(v) or v
end

-- Bounds of integer and number nodes, each optional: between = { low, high }, or any
-- of above / at_least (the low end) and at_most. within() says whether v is inside
-- them, bounds_text() words them for a message (" between 1 and 5", or "").
local function within(s, v)
  if s.between then
    return v >= s.between[1] and v <= s.between[2]
  end
  return (s.above == nil or v > s.above) and (s.at_least == nil or v >= s.at_least)
    and (s.at_most == nil or v <= s.at_most)
end

local function bounds_text(s)
  if s.between then
    return format(" between %s and %s", num(s.between[1]), num(s.between[2]))
  end
  local parts = {}
  if s.above then
    parts[#parts + 1] = "greater than " .. num(s.above)
  elseif s.at_least then
    parts[#parts + 1] = "at least " .. num(s.at_least)
  end
  if s.at_most then
    parts[#parts + 1] = "at most " .. num(s.at_most)
  end
  return #parts > 0 and " " .. concat(parts, " and ") or ""
end

-- A finite number: NaN and infinities are no configuration value.
local function finite(v)
  return type(v) == "number" and v == v and v ~= huge and v ~= -huge
end

function kinds.integer(s, v, path, ctx)
  if not finite(v) or v ~= floor(v) or not within(s, v) then
    return fail(ctx, path, format("must be an integer%s, got %s", bounds_text(s), show(v)))
  end
  return v
end

function kinds.number(s, v, path, ctx)
  if not finite(v) or not within(s, v) then
    return fail(ctx, path, format("must be a number%s, got %s", bounds_text(s), show(v)))
  end
  return v
end

function kinds.boolean(_, v, path, ctx)
  if type(v) ~= "boolean" then
    return fail(ctx, path, "must be a boolean, got " .. show(v))
  end
  return v
end

function kinds.custom(s, v, path, ctx)
  local value, err = s.validate(v)
  if err then
    return fail(ctx, path, err)
  end
  return value
end

function kinds.record(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local names = field_names(s)
  for _, k in ipairs(sorted_keys(v)) do
    if type(k) ~= "string" or s.fields[k] == nil then
      fail(ctx, join(path, k), "unknown key" .. did_you_mean(k, names))
    end
  end
  local out = {}
  for _, name in ipairs(names) do
    out[name] = walk(s.fields[name], v[name], join(path, name), ctx)
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.map(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local keys = sorted_keys(v)
  if s.non_empty and #keys == 0 then
    return fail(ctx, path, "must not be empty")
  end
  if s.max_entries and #keys > s.max_entries then
    fail(ctx, path, format("must have at most %d entries, got %d", s.max_entries, #keys))
  end
  local out, first = {}, {}
  for _, k in ipairs(keys) do
    local kpath = join(path, k)
    local nk
    if type(k) ~= "string" then
      fail(ctx, kpath, "key must be a string, got " .. show(k))
    elseif s.keys then
      nk = walk(s.keys, k, kpath, ctx)
    else
      nk = k
    end
    if nk ~= nil and first[nk] then
      fail(ctx, kpath, format("duplicate %s (same as %s)", s.keys.duplicate or "key", quote(first[nk])))
      nk = nil
    end
    local nv = v[k]
    if s.values then
      nv = walk(s.values, nv, kpath, ctx)
    end
    if nk ~= nil then
      first[nk] = k
      out[nk] = nv
    end
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.list(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local keys = sorted_keys(v)
  for _, k in ipairs(keys) do
    if type(k) ~= "number" or k < 1 or k > #keys or k ~= floor(k) then
      return fail(ctx, path, "must be a list, found key " .. show(k))
    end
  end
  if s.non_empty and #keys == 0 then
    return fail(ctx, path, "must not be empty")
  end
  local out = {}
  for i = 1, #keys do
    local x = v[i]
    if s.elements then
      x = walk(s.elements, x, join(path, i), ctx)
    end
    if x == nil then
      x = false -- keep positions: false marks an invalid element
    end
    out[i] = x
  end
  if s.post then
    s.post(out, v, path, ctx)
  end
  return out
end

function kinds.variant(s, v, path, ctx)
  if type(v) ~= "table" then
    return fail(ctx, path, "must be a table, got " .. show(v))
  end
  local tag, tpath = v[s.tag], join(path, s.tag)
  local names = sorted_keys(s.variants)
  if tag == nil then
    return fail(ctx, tpath, "is required")
  elseif type(tag) ~= "string" then
    return fail(ctx, tpath, "must be a string, got " .. show(tag))
  elseif s.unsupported and s.unsupported[tag] then
    return fail(ctx, tpath, quote(tag) .. " is not supported yet")
  elseif not s.variants[tag] then
    return fail(ctx, tpath, "must be one of " .. quoted_list(names) .. ", got " .. show(tag)
      .. did_you_mean(tag, names))
  end
  return walk(s.variants[tag], v, path, ctx)
end

---------------------------------------------------------------------------
-- Policy schemas. A policy's `schema` is written in the language above; before it
-- validates anything it is itself checked against SCHEMA_NODE (the same language),
-- so that a mistake in it reads "policies/x.lua: schema.fields.n.between: ..." and
-- never surfaces as a Lua error inside the walker. Bounds, keys, values and
-- elements are optional; what a node type does not know is an unknown key.
---------------------------------------------------------------------------

local NODE_TYPES = { "boolean", "custom", "integer", "list", "map", "number", "record", "string", "variant" }

local function function_node(description)
  return {
    type = "custom", description = description,
    validate = function(v)
      if type(v) ~= "function" then
        return nil, "must be a function, got " .. show(v)
      end
      return v
    end,
  }
end

local any_value = {
  type = "custom", description = "any value",
  validate = function(v)
    return v
  end,
}

local SCHEMA_NODE = {
  type = "variant", tag = "type", description = "a schema node", variants = {},
}

local function list_of_two_numbers(v)
  local n = 0
  for _ in pairs(type(v) == "table" and v or {}) do
    n = n + 1
  end
  if n ~= 2 or not finite(v[1]) or not finite(v[2]) then
    return nil, "must be a list of two numbers { low, high }, got " .. (type(v) == "table" and "another table" or show(v))
  end
  if v[1] > v[2] then
    return nil, format("must be { low, high } with low <= high, got { %s, %s }", num(v[1]), num(v[2]))
  end
  return v
end

-- between excludes the other bounds; above and at_least exclude each other.
local function check_bounds(c, _, path, ctx)
  if c.between and (c.above or c.at_least or c.at_most) then
    fail(ctx, path, "between cannot be combined with above, at_least or at_most")
  elseif c.above and c.at_least then
    fail(ctx, path, "above and at_least cannot be combined")
  elseif c.at_most and (c.above or c.at_least) and (c.above or c.at_least) > c.at_most then
    fail(ctx, path, format("the low bound %s is above at_most %s", num(c.above or c.at_least), num(c.at_most)))
  end
end

-- A node's default must itself pass the node; checked after the walk (ctx.deferred),
-- for nodes with no error of their own inside, since walking a broken node is exactly
-- what this section prevents.
local function check_default(_, v, path, ctx)
  if v.default ~= nil then
    ctx.deferred[#ctx.deferred + 1] = function()
      local prefix = format("%s: %s", ctx.source, path)
      for _, e in ipairs(ctx.errs) do
        if sub(e, 1, #prefix) == prefix and find(sub(e, #prefix + 1, #prefix + 1), "^[%.%[:]") then
          return
        end
      end
      local dpath = join(path, "default")
      local ok, err = pcall(walk, v, deep_copy(v.default), dpath, ctx)
      if not ok then
        fail(ctx, dpath, "the schema raised an error checking it: " .. tostring(err))
      end
    end
  end
end

local function node_type(name, extra, post)
  local fields = {
    type = { type = "string", description = "the node type" },
    description = { type = "string", description = "what the value means" },
    required = { type = "boolean", description = "the value must be present" },
    default = any_value,
    check = function_node("check(value) returns an error message, or nil when the value is good"),
  }
  for k, v in pairs(extra) do
    fields[k] = v
  end
  SCHEMA_NODE.variants[name] = {
    type = "record", description = "a " .. name .. " node", fields = fields,
    post = function(c, v, path, ctx)
      if post then
        post(c, v, path, ctx)
      end
      check_default(c, v, path, ctx)
    end,
  }
end

local bound = { type = "number", description = "a bound (inclusive unless above)" }
local numeric = {
  between = { type = "custom", description = "{ low, high }, both inclusive", validate = list_of_two_numbers },
  above = bound, at_least = bound, at_most = bound,
}
local flag = { type = "boolean", description = "a flag" }
local count = { type = "integer", at_least = 0, description = "a count" }

node_type("boolean", {})
node_type("integer", numeric, check_bounds)
node_type("number", numeric, check_bounds)
node_type("string", {
  one_of = { type = "list", non_empty = true, elements = { type = "string", description = "an allowed value" },
    description = "the allowed values" },
  pattern = { type = "string", check = lua_pattern_error, description = "a Lua pattern the value must match" },
  pattern_message = { type = "string", description = "the message when the pattern does not match" },
  non_empty = flag,
  max_len = count,
  normalize = function_node("normalize(value) returns the value to keep"),
})
node_type("record", {
  fields = {
    type = "map", required = true, description = "the fields by name",
    keys = { type = "string", description = "a field name" }, values = SCHEMA_NODE,
  },
})
node_type("map", { keys = SCHEMA_NODE, values = SCHEMA_NODE, non_empty = flag, max_entries = count },
  function(c, _, path, ctx)
    if c.keys and c.keys.type ~= "string" then
      fail(ctx, join(join(path, "keys"), "type"), 'must be "string": map keys are strings, got ' .. show(c.keys.type))
    end
  end)
node_type("list", { elements = SCHEMA_NODE, non_empty = flag })
node_type("variant", {
  tag = { type = "string", required = true, non_empty = true, description = "the field that picks the variant" },
  variants = {
    type = "map", required = true, non_empty = true, description = "a record node by tag value",
    keys = { type = "string", description = "a tag value" }, values = SCHEMA_NODE,
  },
}, function(c, _, path, ctx)
  for _, name in ipairs(sorted_keys(c.variants or {})) do
    local vnode = c.variants[name]
    local vpath = join(join(path, "variants"), name)
    if vnode and vnode.type ~= "record" then
      fail(ctx, join(vpath, "type"), 'must be "record": a variant is a record, got ' .. show(vnode.type))
    elseif vnode and c.tag and vnode.fields and vnode.fields[c.tag] == nil then
      fail(ctx, join(vpath, "fields"), format("must have the tag field %s", quote(c.tag)))
    end
  end
end)
node_type("custom", { validate = function_node("validate(value) returns the value, or nil and a message") })
SCHEMA_NODE.variants.custom.fields.validate.required = true

-- The path of a table that contains itself (a schema must be a tree), or nil.
local function find_cycle(t, path, open)
  open[t] = true
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    if type(v) == "table" then
      local p = join(path, k)
      if open[v] then
        return p
      end
      local found = find_cycle(v, p, open)
      if found then
        return found
      end
    end
  end
  open[t] = nil
end

local schema_errors = setmetatable({}, { __mode = "k" })

-- Checks a policy's schema; name is the policy file as configured. Returns nil, or the
-- list of errors, each "NAME: schema.PATH: reason". Cached per schema table.
function M.check_schema(schema, name)
  local cached = schema_errors[schema]
  if cached == nil then
    local ctx = { source = name, prefix = ".", errs = {}, raw = {}, deferred = {} }
    local cycle = type(schema) == "table" and find_cycle(schema, "schema", {})
    if cycle then
      fail(ctx, cycle, "contains itself (a schema is a tree of tables)")
    else
      walk(SCHEMA_NODE, schema, "schema", ctx)
      for _, fn in ipairs(ctx.deferred) do
        fn()
      end
    end
    sort(ctx.errs)
    cached = #ctx.errs > 0 and ctx.errs or false
    if type(schema) == "table" then
      schema_errors[schema] = cached
    end
  end
  return cached or nil
end

---------------------------------------------------------------------------
-- Shaping: checked tables → the normalized form the C runtime reads.
---------------------------------------------------------------------------

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
  if i.type == "lua" then
    return { type = "lua", timeout_ms = i.timeout_ms }
  elseif i.type == "http" then
    return { type = "http", uri = i.uri, method = i.method, timeout_ms = i.timeout_ms }
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

local function shape_throttle(t)
  return t and { rate = t.rate, burst = t.burst }
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
      path = resolve(prefix, log.path),
      format = log.format,
      where = join(join(stage_path, "access_log"), "format"),
    },
  }
end

local function shape_api(id, a, prefix)
  local api_path = join("apis", id)
  return {
    id = id,
    protocol = a.protocol,
    default_endpoint = a.default_endpoint,
    stages = map_list(a.stages, function(name, st)
      return shape_stage(api_path, name, st, prefix)
    end),
    routes = map_list(a.routes, shape_route),
    usage_plans = map_list(a.usage_plans, shape_plan),
    gateway_responses = map_list(a.gateway_responses, function(t, r)
      return {
        type = t, status = r.status, headers = pairs_list(r.headers), body = r.body,
        where = join(join(api_path, "gateway_responses"), t),
      }
    end),
  }
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
    domains = map_list(c.domains, function(host, d)
      return shape_domain(host, d, prefix)
    end),
    apis = map_list(c.apis, function(id, a)
      return shape_api(id, a, prefix)
    end),
  }
end

---------------------------------------------------------------------------
-- Public API
---------------------------------------------------------------------------

-- Validates a configuration table. opts.source names it in errors (default
-- "config"); opts.prefix is the directory relative file paths are resolved
-- against (default "."). Returns the normalized table, or nil and the sorted
-- list of every error.
function M.validate(tbl, opts)
  opts = opts or {}
  local ctx = { source = opts.source or "config", prefix = opts.prefix or ".", errs = {}, raw = tbl }
  if type(tbl) ~= "table" then
    return nil, { format("%s: must be a table, got %s", ctx.source, type(tbl)) }
  end
  local checked = walk(M.schema, tbl, "", ctx)
  if #ctx.errs > 0 then
    -- sorted, each once: a policy used twice reports a mistake in its schema once
    sort(ctx.errs)
    local errs = {}
    for i, e in ipairs(ctx.errs) do
      if e ~= ctx.errs[i - 1] then
        errs[#errs + 1] = e
      end
    end
    return nil, errs
  end
  local out = shape(checked, ctx.prefix, ctx)
  shape_policies(out, checked, ctx)
  return out
end

-- Validates value against a schema written in this module's schema language (a
-- policy's `schema`, checked first: see M.check_schema). path names value in messages,
-- source the file, name the policy. Returns the normalized value, or nil and the sorted
-- list of errors.
function M.check(schema, value, path, source, name)
  name = name or "the policy"
  local errs = M.check_schema(schema, name)
  if errs then
    return nil, errs
  end
  local ctx = { source = source or "config", prefix = ".", errs = {}, raw = {} }
  if value == nil then
    value = {}
  end
  -- What can still raise is the policy's own check, normalize or validate function.
  local ok, out = pcall(walk, schema, value, path, ctx)
  if not ok then
    return nil, { format("%s: %s: the schema of %s raised an error: %s", ctx.source, path, name, tostring(out)) }
  end
  if #ctx.errs > 0 then
    sort(ctx.errs)
    return nil, ctx.errs
  end
  return out
end

local SANDBOX_LIBS = { "string", "table", "math" }
local SANDBOX_FUNCTIONS = {
  "pairs", "ipairs", "next", "select", "type", "tostring", "tonumber", "error", "assert", "unpack",
}

-- Globals a configuration might reach for; naming them gives a clear error
-- instead of "attempt to index a nil value".
local FORBIDDEN = {
  io = true, os = true, require = true, load = true, loadstring = true, loadfile = true,
  dofile = true, setfenv = true, getfenv = true, rawset = true, rawget = true, rawequal = true,
  setmetatable = true, getmetatable = true, debug = true, jit = true, ffi = true,
  package = true, module = true, collectgarbage = true, newproxy = true, coroutine = true,
  xpcall = true, print = true, _G = true, bit = true,
}

local function pack(...)
  return { n = select("#", ...), ... }
end

local function sandbox_env(state)
  local env = {}
  for _, name in ipairs(SANDBOX_LIBS) do
    env[name] = deep_copy(_G[name])
  end
  env.string.dump = nil
  for _, name in ipairs(SANDBOX_FUNCTIONS) do
    env[name] = _G[name]
  end
  -- pcall must not swallow the budget error, or a loop around pcall runs forever.
  env.pcall = function(...)
    local r = pack(pcall(...))
    if state.exceeded then
      error(BUDGET_EXCEEDED, 0)
    end
    return unpack(r, 1, r.n)
  end
  return setmetatable(env, {
    __index = function(_, name)
      if FORBIDDEN[name] then
        error(format("%s is not available in the configuration sandbox", tostring(name)), 2)
      end
    end,
  })
end

-- Runs chunk under the instruction budget. Returns ok, result-or-error.
local function run_budgeted(chunk, budget, state)
  if jit then
    jit.off(chunk, true) -- compiled traces never call the count hook
  end
  local left = budget
  local old_hook, old_mask, old_count = debug_gethook()
  debug_sethook(function()
    left = left - HOOK_STEP
    if left <= 0 then
      state.exceeded = true
      error(BUDGET_EXCEEDED, 0)
    end
  end, "", HOOK_STEP)
  local ok, result = pcall(chunk)
  if old_hook then
    debug_sethook(old_hook, old_mask, old_count)
  else
    debug_sethook()
  end
  return ok, result
end

-- Loads the configuration file at `path` in a sandbox and validates it.
-- `prefix` is the directory relative file paths are resolved against
-- (default "."). Returns the normalized table, or nil and a list of errors.
-- Evaluates the configuration file at `path` in the sandbox. Returns its table, or
-- nil and a list with the error.
local function evaluate(path)
  local chunk, err = loadfile(path, "t") -- "t": precompiled bytecode could escape the sandbox
  if not chunk then
    if not find(err, path, 1, true) then
      err = format("%s: %s", path, err) -- e.g. "attempt to load chunk with wrong mode"
    end
    return nil, { err }
  end
  local state = { exceeded = false }
  setfenv(chunk, sandbox_env(state))
  local ok, result = run_budgeted(chunk, M.instruction_budget, state)
  if state.exceeded then
    return nil, { format("%s: %s", path, BUDGET_EXCEEDED) }
  elseif not ok then
    return nil, { type(result) == "string" and result or format("%s: error: %s", path, show(result)) }
  elseif type(result) ~= "table" then
    return nil, { format("%s: must return a table, got %s", path, type(result)) }
  end
  return result
end

function M.load(path, prefix)
  local result, errs = evaluate(path)
  if not result then
    return nil, errs
  end
  return M.validate(result, { source = path, prefix = prefix })
end

-- The management listener of the configuration file at `path` (what `moongate
-- reload` talks to): address, port, token file (relative paths resolved against
-- prefix) and whether that is the generated default, or nil and why there is none.
function M.management(path, prefix)
  local result, errs = evaluate(path)
  if not result then
    return nil, errs[1]
  end
  local m = result.management
  if type(m) ~= "table" or type(m.port) ~= "number" then
    return nil, format("%s: no management listener: set management = { port = N } (or send the "
      .. "running gateway SIGHUP)", path)
  end
  local token_file, generated = management_token_file(m, result.state_dir, prefix or ".")
  return type(m.address) == "string" and m.address or "127.0.0.1", m.port, token_file, generated
end

-- Exposed for specs and for tools that want to explain route keys.
M.parse_route_key = parse_route_key

return M
