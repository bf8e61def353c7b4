-- moongate.config.mapping: the configuration of non-proxy HTTP integrations
-- (`type = "http", proxy = false`): its schema fields, the checks that span them, the
-- checks that need the route (path parameters), and the use the workers run
-- (moongate.mapping).
local type, ipairs, pairs = type, ipairs, pairs
local format, match, find, lower, gsub = string.format, string.match, string.find, string.lower, string.gsub
local sort = table.sort
local lang = require "moongate.config.lang"
local values = require "moongate.config.values"
local policies = require "moongate.config.policies"
local mapping = require "moongate.mapping"
local vtl = require "moongate.vtl"
local join, fail, string_keys = lang.join, lang.fail, lang.string_keys
local HEADER_TOKEN, header_value_error = values.HEADER_TOKEN, values.header_value_error

local M = {}

local function transform_use(what)
  return {
    type = "record", post = policies.use("transform"),
    description = "a Lua policy whose transform(body, ctx, conf) returns the new " .. what
      .. " body (and optionally its content type)",
    fields = {
      policy = { type = "string", non_empty = true, required = true,
        description = "the policy file, relative to the prefix" },
      config = {
        type = "custom", description = "the policy's configuration, validated by its schema",
        validate = function(v)
          if type(v) ~= "table" then
            return nil, "must be a table, got " .. lang.show(v)
          end
          return v
        end,
      },
    },
  }
end

-- Mapping templates by media type: the text, or { file = "templates/x.vtl" }.
local function templates(what)
  return {
    type = "map",
    description = "Velocity mapping templates of the " .. what .. " body by media type "
      .. '(e.g. "application/json"): the template text or { file = "..." } (proxy = false)',
    keys = { type = "string", non_empty = true, description = "a media type" },
    values = {
      type = "custom", description = 'the template text, or { file = "path" } (relative to the prefix)',
      validate = function(v)
        if type(v) == "string" then
          return v
        elseif type(v) == "table" and type(v.file) == "string" and v.file ~= "" and next(v, next(v)) == nil
          and next(v) == "file" then
          return v
        end
        return nil, 'must be the template text or { file = "path" }, got ' .. lang.show(v)
      end,
    },
  }
end

local integration_response = {
  type = "record", description = "an integration response: how a backend status becomes the method response",
  fields = {
    selection_pattern = {
      type = "string", non_empty = true,
      check = function(v)
        local _, err = mapping.regex(v)
        return err
      end,
      description = "a regular expression (PCRE2) matched against the whole backend status code; "
        .. "none: the default response",
    },
    status = { type = "integer", between = { 100, 599 }, required = true, description = "the method response status" },
    response_parameters = {
      type = "map", default = {},
      description = "method.response.header.NAME -> integration.response.header.NAME, "
        .. "integration.response.body, context.NAME, stageVariables.NAME or a 'literal'",
      keys = { type = "string", description = "method.response.header.NAME" },
      values = { type = "string", description = "the source" },
    },
    transform = transform_use("response"),
    response_templates = templates("method response"),
  },
}

-- The schema fields added to the http integration record.
M.fields = {
  proxy = {
    type = "boolean", default = true,
    description = "false: a non-proxy integration (parameter mapping, integration responses, transforms)",
  },
  request_parameters = {
    type = "map",
    description = "integration.request.(header|querystring|path).NAME -> method.request.(header|querystring|path).NAME, "
      .. "method.request.body, context.NAME, stageVariables.NAME or a 'literal' (proxy = false)",
    keys = { type = "string", description = "integration.request.(header|querystring|path).NAME" },
    values = { type = "string", description = "the source" },
  },
  request_transform = transform_use("request"),
  request_templates = templates("integration request"),
  passthrough_behavior = {
    type = "string", one_of = { "WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER" },
    description = "what a request whose media type has no request template gets: passed through "
      .. "(WHEN_NO_MATCH, the default), passed through only when there are no request templates "
      .. "(WHEN_NO_TEMPLATES), or 415 (NEVER) (proxy = false)",
  },
  responses = {
    type = "list", elements = integration_response,
    description = "integration responses, tried in order (proxy = false; default: one default response with status 200)",
  },
}

-- Headers the gateway's HTTP client writes itself.
local OWN_HEADERS = { host = true, ["content-length"] = true, connection = true, ["transfer-encoding"] = true }

local function check_source(text, side, path, ctx)
  local src, err = mapping.parse_source(text, side)
  if not src then
    return fail(ctx, path, err)
  end
  if src.kind == "literal" then
    local herr = header_value_error(src.value)
    if herr then
      return fail(ctx, path, herr)
    end
  end
  return src
end

-- The text of a template value (a string, or { file }), or nil and why.
local function template_text(v, prefix)
  if type(v) == "string" then
    return v
  end
  local full = values.resolve(prefix, v.file)
  local text = require("moongate.policy").read_file(full)
  if text == nil then
    return nil, format("file %s cannot be read", lang.quote(full))
  end
  return text
end
M.template_text = template_text

-- Compiles the templates of map t (media type -> template) at path; a template that does
-- not compile is an error at its path with its line and column.
local function check_templates(t, path, ctx)
  for _, key in ipairs(string_keys(t or {})) do
    local tpath = join(path, key)
    local text, err = template_text(t[key], ctx.prefix)
    if not text then
      fail(ctx, tpath, err)
    else
      local _, cerr = vtl.compile(text, tpath)
      if cerr then
        fail(ctx, tpath, cerr)
      end
    end
  end
end

-- The integration record's own checks (post of the http integration).
function M.check(c, v, path, ctx)
  if c.proxy ~= false then
    for _, f in ipairs({ "request_parameters", "request_transform", "responses", "request_templates",
      "passthrough_behavior" }) do
      if c[f] ~= nil then
        fail(ctx, join(path, f), "needs proxy = false (a proxy integration passes requests and responses through)")
      end
    end
    return
  end
  for _, key in ipairs(string_keys(c.request_parameters or {})) do
    local kpath = join(join(path, "request_parameters"), key)
    local target, name = match(key, "^integration%.request%.(%a+)%.(.+)$")
    if not (target == "header" or target == "querystring" or target == "path") then
      fail(ctx, kpath, "must be integration.request.header.NAME, integration.request.querystring.NAME "
        .. "or integration.request.path.NAME")
    elseif target == "header" and (not find(name, HEADER_TOKEN) or OWN_HEADERS[lower(name)]) then
      fail(ctx, kpath, OWN_HEADERS[lower(name)] and "is a header the gateway sets itself"
        or "invalid header name: must be an HTTP token")
    elseif target ~= "header" and not find(name, "^[A-Za-z0-9._~-]+$") then
      fail(ctx, kpath, "invalid parameter name: must match [A-Za-z0-9._~-]+")
    else
      check_source(c.request_parameters[key], "request", kpath, ctx)
      if target == "path" and type(c.uri) == "string" and not find(c.uri, "{" .. name .. "}", 1, true)
        and not find(c.uri, "{" .. name .. "+}", 1, true) then
        fail(ctx, kpath, format("the uri has no {%s} to fill", name))
      end
    end
  end
  if c.request_templates and c.request_transform then
    fail(ctx, join(path, "request_templates"),
      "cannot be used with request_transform: a request body is mapped by a template or by a transform, not both")
  end
  check_templates(c.request_templates, join(path, "request_templates"), ctx)
  local default
  local raw = type(v.responses) == "table" and v.responses or {}
  for i, resp in ipairs(c.responses or {}) do
    local rpath = join(join(path, "responses"), i)
    if type(raw[i]) == "table" and raw[i].selection_pattern == nil then
      if default then
        fail(ctx, rpath, format("responses[%d] is the default already (no selection_pattern): only one may be", default))
      end
      default = default or i
    end
    if resp.response_templates and resp.transform then
      fail(ctx, join(rpath, "response_templates"),
        "cannot be used with transform: a response body is mapped by a template or by a transform, not both")
    end
    check_templates(resp.response_templates, join(rpath, "response_templates"), ctx)
    for _, key in ipairs(string_keys(resp.response_parameters or {})) do
      local kpath = join(join(rpath, "response_parameters"), key)
      local name = match(key, "^method%.response%.header%.(.+)$")
      if not name then
        fail(ctx, kpath, "must be method.response.header.NAME")
      elseif not find(name, HEADER_TOKEN) then
        fail(ctx, kpath, "invalid header name: must be an HTTP token")
      else
        check_source(resp.response_parameters[key], "response", kpath, ctx)
      end
    end
  end
end

-- The path parameters the uri of integration i may name: the route's, or with
-- proxy = false the mapped integration.request.path.NAME (route_params: name -> true).
function M.uri_params(i, route_params)
  if type(i) ~= "table" or i.proxy ~= false or type(i.request_parameters) ~= "table" then
    return route_params
  end
  local out = {}
  for k, v in pairs(route_params) do
    out[k] = v
  end
  for key in pairs(i.request_parameters) do
    local name = type(key) == "string" and match(key, "^integration%.request%.path%.(.+)$")
    if name then
      out[name] = true
    end
  end
  return out
end

-- Checks that need the route: method.request.path.NAME must be a path parameter of it,
-- and websocket APIs have no non-proxy integrations.
function M.check_route(i, route_params, ws, path, ctx)
  if type(i) ~= "table" or i.proxy ~= false then
    return
  end
  if ws then
    return fail(ctx, join(path, "proxy"), "must be true on websocket APIs")
  end
  if type(i.request_parameters) ~= "table" then
    return
  end
  for _, key in ipairs(string_keys(i.request_parameters)) do
    local v = i.request_parameters[key]
    local name = type(v) == "string" and match(v, "^method%.request%.path%.(.+)$")
    if name and not route_params[name] then
      fail(ctx, join(join(path, "request_parameters"), key),
        format("method.request.path.%s is not a path parameter of the route", name))
    end
  end
end

-- The workers' use of a checked non-proxy integration i (at where), with pid numbering
-- policies (moongate.config.shape). A {name} of the uri that no parameter maps takes the
-- route's path parameter of that name.
function M.use(i, where, pid, prefix)
  local params, mapped = {}, {}
  for key, src in pairs(i.request_parameters or {}) do
    local target, name = match(key, "^integration%.request%.(%a+)%.(.+)$")
    if target == "header" then
      name = lower(name)
    end
    params[#params + 1] = { target = target, name = name, source = mapping.parse_source(src, "request") }
    if target == "path" then
      mapped[name] = true
    end
  end
  for name in gsub(i.uri, "%${[^}]*}", ""):gmatch("{([%w_.-]+)%+?}") do
    if not mapped[name] then
      params[#params + 1] = { target = "path", name = name, source = { kind = "path", name = name } }
      mapped[name] = true
    end
  end
  sort(params, function(a, b)
    return a.target < b.target or (a.target == b.target and a.name < b.name)
  end)
  local function transform(t, tpath)
    return t and { policy = pid(t._policy), conf = t.config, where = tpath } or nil
  end
  -- templates travel as text (the workers compile them, moongate.mapping.prepare)
  local function templates_of(t, tpath)
    if t == nil then
      return nil
    end
    local list = {}
    for _, key in ipairs(string_keys(t)) do
      list[#list + 1] = { type = lower(key), text = template_text(t[key], prefix or "."),
        where = join(tpath, key) }
    end
    return list
  end
  local responses = {}
  for n, resp in ipairs(i.responses or { { status = 200 } }) do
    local rparams = {}
    for key, src in pairs(resp.response_parameters or {}) do
      rparams[#rparams + 1] = { name = lower(match(key, "^method%.response%.header%.(.+)$")),
        source = mapping.parse_source(src, "response") }
    end
    sort(rparams, function(a, b)
      return a.name < b.name
    end)
    responses[n] = { pattern = resp.selection_pattern, status = resp.status, params = rparams,
      transform = transform(resp.transform, join(join(join(where, "responses"), n), "transform")),
      templates = templates_of(resp.response_templates, join(join(join(where, "responses"), n),
        "response_templates")) }
  end
  return {
    hook = "handle", where = where, mapping = true, uri = i.uri, method = i.method,
    timeout_ms = i.timeout_ms, params = params, responses = responses,
    request_transform = transform(i.request_transform, join(where, "request_transform")),
    request_templates = templates_of(i.request_templates, join(where, "request_templates")),
    passthrough = i.passthrough_behavior or "WHEN_NO_MATCH",
  }
end

return M
