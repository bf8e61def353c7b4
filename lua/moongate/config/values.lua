-- moongate.config.values: checks of single values that the schema
-- (moongate.config.schema) attaches to its nodes: addresses, host names, route keys,
-- URLs, stage names, API keys, files the gateway will read, Lua patterns, identity
-- sources. Each returns an error message, or nil when the value is good; none looks
-- at another field (those are moongate.config.checks).
local type, ipairs, tostring, tonumber, pcall, require = type, ipairs, tostring, tonumber, pcall, require
local io_open = io.open
local concat = table.concat
local format, find, sub, match, gsub = string.format, string.find, string.sub, string.match, string.gsub
local floor = math.floor
local lang = require "moongate.config.lang"
local quote, show, contains = lang.quote, lang.show, lang.contains
local loaded_modules = package.loaded

local M = {}

local METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS" }
local ROUTE_METHODS = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY" }

local API_ID = "^[A-Za-z0-9_-]+$"
local STAGE_NAME = "^[A-Za-z0-9_-]+$" -- plus "$default", at most 128 bytes
local VARIABLE_NAME = "^[A-Za-z0-9_]+$"
local PARAM_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
local SEGMENT_CHARS = "^[A-Za-z0-9%._~!%$&'%(%)%*%+,;=:@%-]+$"
local HEADER_TOKEN = "^[!#%$%%&'%*%+%.%^_`|~0-9A-Za-z%-]+$"
local HOST_CHARS = "^[A-Za-z0-9%.%-]+$"
local BASE_SEGMENT = "^[A-Za-z0-9%._~%-]+$"

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

-- Route keys of a WebSocket API: "$connect", "$disconnect", "$default", or any other
-- key of 1..128 printable ASCII characters that the route selection expression
-- evaluates to (other keys starting with "$" are reserved).
local WS_SPECIAL_KEYS = { "$connect", "$default", "$disconnect" }

local function ws_route_key_error(v)
  if contains(WS_SPECIAL_KEYS, v) then
    return nil
  end
  if v == "" or #v > 128 then
    return format("must be 1 to 128 characters, got %d", #v)
  end
  if find(v, "[^\32-\126]") then
    return "must be printable ASCII characters (space to ~)"
  end
  if sub(v, 1, 1) == "$" then
    return 'must be "$connect", "$disconnect", "$default" or a key not starting with "$"'
      .. lang.did_you_mean(v, WS_SPECIAL_KEYS)
  end
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
-- (runtime/conf/template.c, runtime/base/tls.c). Inside moongate the validator asks it
-- through moongate.native (runtime/conf/config.c), so that such errors are reported with
-- every other error; without it (busted) the gateway reports them when it builds the
-- configuration.
local function template_error(v)
  local native = loaded_modules["moongate.native"]
  if native then
    return native.template_error(v)
  end
end

-- Route selection expressions are compiled by the gateway (runtime/conf/rsel.c), asked
-- through moongate.native as templates are.
local function route_selection_expression_error(v)
  local native = loaded_modules["moongate.native"]
  if native and native.rsel_error then
    return native.rsel_error(v)
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

-- A JWT authorizer's identity source: a header or a query string parameter.
local function jwt_identity_source_error(v)
  local kind = match(v, "^%$request%.(%a+)%.[^%s]+$")
  if kind == "header" or kind == "querystring" then
    return nil
  end
  return "must be $request.header.NAME or $request.querystring.NAME, got " .. show(v)
end

M.jwt_identity_source_error = jwt_identity_source_error
M.METHODS, M.API_ID, M.VARIABLE_NAME, M.HEADER_TOKEN = METHODS, API_ID, VARIABLE_NAME, HEADER_TOKEN
M.address_error, M.workers_value, M.host_error = address_error, workers_value, host_error
M.strip_slashes, M.base_path_error, M.parse_target = strip_slashes, base_path_error, parse_target
M.stage_name_error, M.header_value_error = stage_name_error, header_value_error
M.parse_route_key, M.route_key_error = parse_route_key, route_key_error
M.ws_route_key_error, M.route_selection_expression_error = ws_route_key_error,
  route_selection_expression_error
M.url_error, M.uri_error, M.expand_stage_variables = url_error, uri_error, expand_stage_variables
M.resolve, M.file_error, M.template_error = resolve, file_error, template_error
M.certificate_pair_error, M.log_path_error = certificate_pair_error, log_path_error
M.hex64_error, M.api_key_value_error = hex64_error, api_key_value_error
M.lua_pattern_error, M.identity_source_error = lua_pattern_error, identity_source_error

return M
