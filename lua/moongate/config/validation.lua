-- moongate.config.validation: request validation in the configuration, as API Gateway's
-- request validators have it: an API's models (JSON Schema draft 4, a Lua table or a
-- JSON file), and per route the required request parameters (AWS's method.request.*
-- names), the validator ("none", "params", "body", "all") and the model of each content
-- type. schema.lua takes the fields from here, checks.lua calls check_api, shape.lua
-- calls shape_api; the gateway compiles the models (runtime/base/jschema.c) and the
-- validate phase applies them (runtime/gw/validate.c).
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local format, match, lower, byte, gsub = string.format, string.match, string.lower, string.byte,
  string.gsub
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge
local io_open = io.open
local loaded_modules = package.loaded
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local quote, show, join, fail = lang.quote, lang.show, lang.join, lang.fail
local sorted_keys, string_keys, did_you_mean = lang.sorted_keys, lang.string_keys, lang.did_you_mean
local resolve, file_error, parse_route_key = values.resolve, values.file_error, values.parse_route_key

local M = {}

local VALIDATORS = { "none", "params", "body", "all" }
local HEADER_TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
local MEDIA_TYPE = "^[%w!#$&^_.+-]+/[%w!#$&^_.+-]+$"

---------------------------------------------------------------------------
-- Lua tables as JSON text
---------------------------------------------------------------------------

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
  return '"' .. gsub(s, '[%c"\\]', function(c)
    return ESC[c] or format("\\u%04x", byte(c))
  end) .. '"'
end

local function pointer(ptr, k)
  return ptr .. "/" .. gsub(gsub(tostring(k), "~", "~0"), "/", "~1")
end

-- v as JSON text, or nil and why (naming the place as a JSON pointer). A table with
-- keys 1..n is an array; one with string keys an object; the empty table is the empty
-- object (a schema's `properties = {}`; write an empty array in a schema_file).
local function encode(v, ptr, depth)
  local t = type(v)
  if t == "string" then
    return json_string(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "number" then
    if v ~= v or v == huge or v == -huge then
      return nil, format("at %s: %s is no JSON number", ptr == "" and "/" or ptr,
        v ~= v and "NaN" or v > 0 and "infinity" or "-infinity")
    end
    if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
      return format("%d", v)
    end
    return format("%.17g", v)
  elseif t ~= "table" then
    return nil, format("at %s: a %s is no JSON value", ptr == "" and "/" or ptr, t)
  end
  if depth > 30 then
    return nil, format("at %s: nested too deeply", ptr)
  end
  local n, strings, others = #v, 0, 0
  for k in pairs(v) do
    if type(k) == "string" then
      strings = strings + 1
    elseif type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then
      others = others + 1
    end
  end
  if others > 0 or (strings > 0 and n > 0) then
    return nil, format("at %s: a table must be a list (keys 1..n) or have only string keys",
      ptr == "" and "/" or ptr)
  end
  local parts = {}
  if n > 0 then
    for i = 1, n do
      local s, err = encode(v[i], pointer(ptr, i - 1), depth + 1)
      if not s then
        return nil, err
      end
      parts[i] = s
    end
    return "[" .. concat(parts, ",") .. "]"
  end
  for _, k in ipairs(sorted_keys(v)) do
    local s, err = encode(v[k], pointer(ptr, k), depth + 1)
    if not s then
      return nil, err
    end
    parts[#parts + 1] = json_string(k) .. ":" .. s
  end
  return "{" .. concat(parts, ",") .. "}"
end
M.encode = function(v)
  return encode(v, "", 0)
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

-- The schema's compile error (models: the API's models' JSON texts by name, which its
-- $refs may name by their AWS model URLs), asked of the gateway (moongate.native) inside moongate;
-- without it (busted) the gateway reports it when it builds the configuration.
local function schema_error(json, models)
  local native = loaded_modules["moongate.native"]
  if native and native.jschema_error then
    return native.jschema_error(json, models)
  end
end

---------------------------------------------------------------------------
-- Schema fields (moongate.config.schema)
---------------------------------------------------------------------------

-- "method.request.header.x-trace" -> "header", "x-trace"; or nil and why.
local function parse_parameter(key)
  local kind, name = match(key, "^method%.request%.(%a+)%.(.+)$")
  if not kind or (kind ~= "querystring" and kind ~= "header" and kind ~= "path") then
    return nil, "must be method.request.querystring.NAME, method.request.header.NAME or"
      .. " method.request.path.NAME"
  end
  if kind == "header" and not match(name, HEADER_TOKEN) then
    return nil, "invalid header name: must be an HTTP token"
  elseif kind == "path" and not match(name, "^[%w_]+$") then
    return nil, "invalid path parameter name: must match [A-Za-z0-9_]+"
  elseif kind == "querystring" and (match(name, '[%c"\\&=#%%+ ]') or #name > 128) then
    return nil, 'invalid query string parameter name: at most 128 characters, no control'
      .. ' characters, spaces or any of " \\ & = # % +'
  end
  return kind, name
end
M.parse_parameter = parse_parameter

M.route_fields = {
  request_parameters = {
    type = "map", description = "request parameters by AWS name (method.request.querystring.NAME,"
      .. " method.request.header.NAME, method.request.path.NAME): true when required",
    keys = {
      type = "string", description = "method.request.{querystring,header,path}.NAME",
      check = function(k)
        local kind, err = parse_parameter(k)
        return not kind and err or nil
      end,
    },
    values = { type = "boolean", description = "true: required (checked by a params or all validator)" },
  },
  request_validator = {
    type = "string", one_of = VALIDATORS,
    description = 'what is validated before the integration: "none" (the default), "params" (required'
      .. ' parameters), "body" (the body against request_models) or "all"',
  },
  request_models = {
    type = "map", description = 'models of the API by content type ("$default": any other content type)',
    keys = {
      type = "string", normalize = lower, duplicate = "content type",
      description = 'a media type such as "application/json", or "$default"',
      check = function(k)
        if k ~= "$default" and not match(lower(k), MEDIA_TYPE) then
          return 'must be a media type such as "application/json", or "$default"'
        end
      end,
    },
    values = { type = "string", non_empty = true, description = "a model of the API (apis[id].models)" },
  },
}

-- A model's JSON text and the configuration path it comes from (its schema or
-- schema_file); the text is nil when the file cannot be read (file_error said why), and
-- the third value says why a schema table is not JSON.
local function model_json(m, path, prefix)
  if m.schema then
    local json, err = encode(m.schema, "", 0)
    return json, join(path, "schema"), err
  elseif m.schema_file then
    return read_file(resolve(prefix, m.schema_file)), join(path, "schema_file")
  end
end

local function check_model(_, v, path, ctx)
  if (v.schema ~= nil) == (v.schema_file ~= nil) then
    fail(ctx, path, "needs either schema (a Lua table) or schema_file (a JSON file), not both")
  end
end

-- Compiles every model of the API (c.models), each able to refer to the others by their
-- AWS model URLs, and reports what does not compile.
local function check_models(c, path, ctx)
  local texts, wheres, names = {}, {}, sorted_keys(type(c.models) == "table" and c.models or {})
  for _, name in ipairs(names) do
    local m = c.models[name]
    if type(m) == "table" and (m.schema == nil) ~= (m.schema_file == nil) then
      local json, where, err = model_json(m, join(join(path, "models"), name), ctx.prefix)
      if err then
        fail(ctx, where, err)
      elseif json then
        texts[name], wheres[name] = json, where
      end
    end
  end
  for _, name in ipairs(names) do
    local err = texts[name] and schema_error(texts[name], texts)
    if err then
      fail(ctx, wheres[name], err)
    end
  end
end

M.models_field = {
  type = "map", max_entries = 500,
  description = "JSON Schema draft 4 models by name, for routes' request_models",
  keys = {
    type = "string", pattern = "^[%w]+$", description = "model name",
    pattern_message = "invalid model name: must be alphanumeric",
  },
  values = {
    type = "record", description = "a model", post = check_model,
    fields = {
      schema = {
        type = "custom", description = "the JSON Schema draft 4, as a Lua table",
        validate = function(v)
          if type(v) ~= "table" then
            return nil, "must be a table (a JSON schema), got " .. show(v)
          end
          return v
        end,
      },
      schema_file = {
        type = "string", check = file_error,
        description = "a file holding the JSON Schema draft 4 as JSON text (relative to the prefix)",
      },
      description = { type = "string", description = "free text" },
    },
  },
}

---------------------------------------------------------------------------
-- Checks across fields (moongate.config.checks, the API's post)
---------------------------------------------------------------------------

local NOT_WS = "is not for websocket APIs (request validation is for http APIs)"

function M.check_api(c, v, path, ctx)
  check_models(c, path, ctx)
  local routes = type(v.routes) == "table" and v.routes or {}
  local models = string_keys(type(c.models) == "table" and c.models or {})
  local ws = c.protocol == "websocket"
  for _, key in ipairs(string_keys(routes)) do
    local r, cr, rpath = routes[key], c.routes and c.routes[key], join(join(path, "routes"), key)
    if type(r) == "table" and ws then
      for _, f in ipairs({ "request_parameters", "request_validator", "request_models" }) do
        if r[f] ~= nil then
          fail(ctx, join(rpath, f), NOT_WS)
        end
      end
    elseif type(cr) == "table" then
      for _, ct in ipairs(sorted_keys(cr.request_models or {})) do
        local name = cr.request_models[ct]
        if type(name) == "string" and (type(c.models) ~= "table" or c.models[name] == nil) then
          fail(ctx, join(join(rpath, "request_models"), ct),
            "names no model of this API (" .. quote(name) .. ")" .. did_you_mean(name, models))
        end
      end
      local route = parse_route_key(key)
      for _, pk in ipairs(sorted_keys(cr.request_parameters or {})) do
        local kind, name = parse_parameter(pk)
        if kind == "path" and route and not route.params[name] then
          fail(ctx, join(join(rpath, "request_parameters"), pk),
            format("{%s} is not a path parameter of the route", name))
        end
      end
    end
  end
end

---------------------------------------------------------------------------
-- The shaped form (moongate.config.shape; runtime/conf/valconf.c reads it)
---------------------------------------------------------------------------

-- Sets shaped.models = { {name, json, where} } and, on each shaped route that validates
-- something, validation = { params, body, required = { {kind, name} }, models = {
-- {content_type, model = index} } }.
function M.shape_api(api_path, a, shaped, prefix)
  local index = {}
  shaped.models = a.models and {} or nil
  for _, name in ipairs(sorted_keys(a.models or {})) do
    local json, where = model_json(a.models[name], join(join(api_path, "models"), name), prefix)
    shaped.models[#shaped.models + 1] = { name = name, json = json, where = where }
    index[name] = #shaped.models
  end
  for _, sr in ipairs(shaped.routes or {}) do
    local r = a.routes[sr.key]
    local validator = r and r.request_validator or "none"
    if validator ~= "none" then
      local required, models = {}, {}
      -- AWS lists the missing ones by their full names, sorted: headers, path, query string
      for _, pk in ipairs(sorted_keys(r.request_parameters or {})) do
        if r.request_parameters[pk] == true then
          local kind, name = parse_parameter(pk)
          required[#required + 1] = { kind = kind, name = name }
        end
      end
      for _, ct in ipairs(sorted_keys(r.request_models or {})) do
        if index[r.request_models[ct]] then
          models[#models + 1] = { content_type = ct, model = index[r.request_models[ct]] }
        end
      end
      sort(models, function(x, y)
        if (x.content_type == "$default") ~= (y.content_type == "$default") then
          return y.content_type == "$default"
        end
        return x.content_type < y.content_type
      end)
      sr.validation = {
        params = validator == "params" or validator == "all",
        body = validator == "body" or validator == "all",
        required = required, models = models,
      }
    end
  end
end

M.VALIDATORS = VALIDATORS
return M
