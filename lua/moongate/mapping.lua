-- moongate.mapping: non-proxy HTTP integrations (`type = "http", proxy = false`), run by
-- the runtime (moongate.runtime, as a Lua integration) and by the busted kit
-- (moongate.testing) with the same code.
--
--   parse_source(text, side)   a mapping source ("method.request.header.x", "'lit'", ...)
--                              -> { kind, name | value } or nil, why (config validation)
--   regex(pattern)             an anchored PCRE2 matcher (selection_pattern), or nil, why
--   prepare(use)               compiles a use's selection patterns (once per generation)
--   transform(use, body, ctx, call)  runs a transform policy (the "transform" hook kind)
--   run(use, req, call)        the integration: maps the request, calls the backend,
--                              selects the integration response, maps its headers
--
-- A use (moongate.config.shape) holds uri, method, timeout_ms, params (the request's:
-- { { target = "header" | "querystring" | "path", name, source } }), request_transform
-- and responses ({ { pattern, status, params = { { name, source } }, transform } },
-- in configuration order). Transforms are policy uses { policy, conf, where } bound by
-- the runtime (mod) or the kit.
local ffi = require "ffi"
local cjson = require "cjson.safe"
local jsonpath = require "moongate.jsonpath"
local vtl = require "moongate.vtl"
local request_lib = require "moongate.request"

local type, ipairs, pairs, tostring, tonumber, pcall = type, ipairs, pairs, tostring, tonumber, pcall
local format, find, sub, gsub, lower, byte, match =
  string.format, string.find, string.sub, string.gsub, string.lower, string.byte, string.match
local concat, sort = table.concat, table.sort

local M = {}

-- Headers the gateway's HTTP client writes itself (a template override cannot set them).
local OWN_HEADERS = { host = true, ["content-length"] = true, connection = true, ["transfer-encoding"] = true }
local apply_request_overrides

---------------------------------------------------------------------------
-- Sources
---------------------------------------------------------------------------

-- Source prefixes by side: "request" (integration request parameters) and "response"
-- (method response headers).
local PREFIXES = {
  request = {
    { "method.request.header.", "header" }, { "method.request.querystring.", "querystring" },
    { "method.request.path.", "path" }, { "method.request.multivalueheader.", "mv_header" },
    { "method.request.multivaluequerystring.", "mv_querystring" },
    { "method.request.body.", "body_path", "JSONPATH" },
  },
  response = {
    { "integration.response.header.", "response_header" },
    { "integration.response.multivalueheader.", "mv_response_header" },
    { "integration.response.body.", "response_body_path", "JSONPATH" },
  },
}
local WHOLE = {
  request = { ["method.request.body"] = "body" },
  response = { ["integration.response.body"] = "response_body" },
}
local NAME = "^[A-Za-z0-9._$-]+$" -- AWS's expression alphabet

-- "method.request.header.x-a" -> { kind = "header", name = "x-a" }; nil and why when
-- text is not a source of side ("request" or "response").
function M.parse_source(text, side)
  if type(text) ~= "string" then
    return nil, "must be a string"
  end
  local lit = match(text, "^'(.*)'$")
  if lit then
    return { kind = "literal", value = lit }
  end
  if WHOLE[side][text] then
    return { kind = WHOLE[side][text] }
  end
  for _, p in ipairs(PREFIXES[side]) do
    if sub(text, 1, #p[1]) == p[1] and p[3] then
      -- a JSONPath into the body, without its "$." (method.request.body.pet.name)
      local steps, err = jsonpath.compile(sub(text, #p[1] + 1))
      if not steps or #steps == 0 then
        return nil, format("%s needs a JSONPath expression: %s", p[1], err or "empty")
      end
      return { kind = p[2], steps = steps }
    elseif sub(text, 1, #p[1]) == p[1] then
      local name = sub(text, #p[1] + 1)
      if not find(name, NAME) then
        return nil, format("%s needs a parameter name ([A-Za-z0-9._$-]+)", p[1])
      end
      if p[2] == "header" or p[2] == "response_header" or p[2] == "mv_header" or p[2] == "mv_response_header" then
        name = lower(name)
      end
      return { kind = p[2], name = name }
    end
  end
  local ctx = match(text, "^context%.(.+)$")
  if ctx then
    local request = require "moongate.request"
    if not request.is_context_variable(ctx) then
      return nil, format("context.%s is not a $context variable", ctx)
    end
    return { kind = "context", name = ctx }
  end
  local sv = match(text, "^stageVariables%.(.+)$")
  if sv then
    if not find(sv, "^[A-Za-z0-9_]+$") then
      return nil, "stageVariables needs a variable name ([A-Za-z0-9_]+)"
    end
    return { kind = "stage", name = sv }
  end
  local names = {}
  for _, p in ipairs(PREFIXES[side]) do
    names[#names + 1] = p[1] .. (p[3] or "NAME")
  end
  for w in pairs(WHOLE[side]) do
    names[#names + 1] = w
  end
  sort(names)
  return nil, format("must be %s, context.NAME, stageVariables.NAME or a 'quoted literal', got %q",
    concat(names, ", "), text)
end

---------------------------------------------------------------------------
-- Selection patterns: PCRE2 (Debian libpcre2-8-0) through the FFI, anchored at both ends
-- as AWS (Java's String.matches) anchors them
---------------------------------------------------------------------------

ffi.cdef [[
typedef struct pcre2_real_code_8 pcre2_code_8;
typedef struct pcre2_real_match_data_8 pcre2_match_data_8;
pcre2_code_8 *pcre2_compile_8(const char *pattern, size_t length, uint32_t options,
                              int *errorcode, size_t *erroroffset, void *ccontext);
void pcre2_code_free_8(pcre2_code_8 *code);
pcre2_match_data_8 *pcre2_match_data_create_from_pattern_8(const pcre2_code_8 *code, void *gcontext);
void pcre2_match_data_free_8(pcre2_match_data_8 *match_data);
int pcre2_match_8(const pcre2_code_8 *code, const char *subject, size_t length, size_t startoffset,
                  uint32_t options, pcre2_match_data_8 *match_data, void *mcontext);
int pcre2_get_error_message_8(int errorcode, char *buffer, size_t bufflen);
size_t *pcre2_get_ovector_pointer_8(pcre2_match_data_8 *match_data);
]]

local pcre
local function lib()
  if pcre == nil then
    local ok, l = pcall(ffi.load, "libpcre2-8.so.0")
    if not ok then
      ok, l = pcall(ffi.load, "pcre2-8")
    end
    pcre = ok and l or false
  end
  return pcre
end

local ANCHORED, ENDANCHORED = 0x80000000, 0x20000000
local err_code, err_off = ffi.new("int[1]"), ffi.new("size_t[1]")
local err_text = ffi.new("char[256]")

-- A matcher function(text) -> true | false for pattern, or nil and why.
-- The compiled pattern (options: PCRE2 compile options), its match data and the
-- library; or nil and why.
local function compile(pattern, options)
  local L = lib()
  if not L then
    return nil, "PCRE2 (libpcre2-8.so.0) is not available"
  end
  local code = L.pcre2_compile_8(pattern, #pattern, options, err_code, err_off, nil)
  if code == nil then
    L.pcre2_get_error_message_8(err_code[0], err_text, 256)
    return nil, format("invalid regular expression at offset %d: %s", tonumber(err_off[0]),
      ffi.string(err_text))
  end
  code = ffi.gc(code, L.pcre2_code_free_8)
  return code, ffi.gc(L.pcre2_match_data_create_from_pattern_8(code, nil), L.pcre2_match_data_free_8), L
end

function M.regex(pattern)
  local code, md, L = compile(pattern, ANCHORED + ENDANCHORED)
  if not code then
    return nil, md
  end
  return function(text)
    return L.pcre2_match_8(code, text, #text, 0, 0, md, nil) >= 0
  end
end

-- An unanchored PCRE2 regular expression (mapping templates' replaceAll, split): an
-- object whose find(text, from) answers { b, e, [1] = the match, [2..] = the groups }
-- (b, e: 1-based, e inclusive) for the first match at or after from, or nil; or nil
-- and why.
function M.pcre(pattern)
  local code, md, L = compile(pattern, 0)
  if not code then
    return nil, md
  end
  return {
    find = function(text, from)
      local rc = L.pcre2_match_8(code, text, #text, from - 1, 0, md, nil)
      if rc < 0 then
        return nil
      end
      local ov = L.pcre2_get_ovector_pointer_8(md)
      local b, e = tonumber(ov[0]), tonumber(ov[1])
      local g = { b = b + 1, e = e }
      for k = 0, (rc > 0 and rc or 1) - 1 do
        local gb, ge = ov[2 * k], ov[2 * k + 1]
        g[k + 1] = gb ~= ffi.cast("size_t", -1) and sub(text, tonumber(gb) + 1, tonumber(ge)) or ""
      end
      return g
    end,
  }
end

-- Compiles the selection patterns of a use (the runtime's load_gen, the kit); returns
-- nil or why one failed.
function M.prepare(use)
  for _, resp in ipairs(use.responses) do
    if resp.pattern and not resp.match then
      local m, err = M.regex(resp.pattern)
      if not m then
        return err
      end
      resp.match = m
    end
    local err = M.prepare_templates(resp.templates)
    if err then
      return err
    end
  end
  return M.prepare_templates(use.request_templates)
end

-- Compiles a list of templates ({ type, text, where }) once (the generation's load);
-- returns nil or why one failed.
function M.prepare_templates(list)
  for _, t in ipairs(list or {}) do
    if not t.tpl then
      local tpl, err = vtl.compile(t.text or "", t.where)
      if not tpl then
        return t.where .. ": " .. err
      end
      t.tpl = tpl
    end
  end
  return nil
end

---------------------------------------------------------------------------
-- The transform hook kind: transform(body, ctx, conf) -> new body [, content type]
---------------------------------------------------------------------------

-- Runs a transform use's transform under the budget (call: hooks.call with it). Returns
-- the new body and content type (nil: unchanged), or nil and an error { message,
-- traceback }. A table body is JSON-encoded (content type application/json).
function M.transform(use, body, ctx, call)
  local ok, out, ctype = call(use.mod.transform, body, ctx, use.conf)
  if not ok then
    return nil, out
  end
  if type(out) == "table" then
    local s, jerr = cjson.encode(out)
    if not s then
      return nil, { message = "transform returned a table that is not JSON: " .. tostring(jerr), traceback = "" }
    end
    out, ctype = s, ctype or "application/json"
  end
  if type(out) ~= "string" then
    return nil, { message = "transform must return the new body (a string or a table), got " .. type(out),
      traceback = "" }
  end
  if ctype ~= nil and (type(ctype) ~= "string" or find(ctype, "[%c]")) then
    return nil, { message = "transform's second result (the content type) must be a string without control characters",
      traceback = "" }
  end
  return out, ctype
end

---------------------------------------------------------------------------
-- The integration
---------------------------------------------------------------------------

local function encode(s, keep_slash)
  return (gsub(s, "[^A-Za-z0-9%-._~" .. (keep_slash and "/" or "") .. "]", function(c)
    return format("%%%02X", byte(c))
  end))
end

-- The value of a request-side source, or nil (the parameter is then left out).
local function request_value(src, req)
  local k = src.kind
  if k == "literal" then
    return src.value
  elseif k == "header" then
    return req:header(src.name)
  elseif k == "querystring" then
    return req:query(src.name)
  elseif k == "path" then
    return req:path_param(src.name)
  elseif k == "context" then
    return req:context(src.name)
  elseif k == "stage" then
    return req:stage_variable(src.name)
  elseif k == "body" then
    return req:body()
  elseif k == "body_path" then
    return M.body_value(req:body(), src.steps)
  elseif k == "mv_header" then
    local _, all = req:header_lists()
    return all[src.name]
  elseif k == "mv_querystring" then
    local _, all = request_lib.parse_query_lists(req.query_string)
    return all[src.name]
  end
  return nil
end

-- What a JSONPath finds in a JSON body, as a parameter value: a string as it is, anything
-- else as JSON; nil when the body is not JSON or the path finds nothing.
function M.body_value(body, steps)
  local root = jsonpath.decode(body or "")
  if root == nil then
    return nil
  end
  local v = jsonpath.query(root, steps)
  if v == nil or v == jsonpath.null then
    return nil
  elseif type(v) == "string" then
    return v
  end
  return jsonpath.encode(v)
end

local function response_value(src, req, res)
  local k = src.kind
  if k == "response_header" then
    return res.headers[src.name]
  elseif k == "response_body" then
    return res.body
  elseif k == "response_body_path" then
    return M.body_value(res.body, src.steps)
  elseif k == "mv_response_header" then
    local v = res.headers[src.name]
    return v and (gsub(v, ", ", ","))
  end
  return request_value(src, req)
end

-- The request values a transform sees (a copy: changing it changes nothing).
local function request_ctx(req)
  return {
    method = req.method, path = req.path, route_key = req.route_key, stage = req.stage,
    request_id = req.request_id, source_ip = req.source_ip,
    headers = req:headers(), query = req:query_params(), path_parameters = req:path_params(),
    stage_variables = req:stage_variables(),
    context = function(name)
      return req:context(name)
    end,
  }
end

-- The media type of a Content-Type or Accept value: its first type without parameters,
-- lower case ("Application/JSON; charset=utf-8" -> "application/json"), or nil.
local function media_type(v)
  if not v then
    return nil
  end
  v = gsub(lower(match(v, "^%s*([^,;]*)") or ""), "%s+$", "")
  return v ~= "" and v or nil
end
M.media_type = media_type

-- What a template sees of req: $input (body, params), $context, $stageVariables.
local function template_input(req, body)
  local last_h = req:header_lists()
  local last_q = request_lib.parse_query_lists(req.query_string)
  return { body = body, params = { path = req:path_params(), querystring = last_q, header = last_h },
    context = function(name)
      return req:context(name)
    end, stage_variables = req:stage_variables() }
end
M.template_input = template_input

-- Renders template t under the budget (call); returns the text and the overrides, or nil
-- and the error { message, traceback }.
local function render(t, input, call)
  local ok, out, over = call(vtl.render, t.tpl, input)
  if not ok then
    return nil, out
  end
  return out, over
end

-- The response template for the request's Accept value (AWS: the template of that media
-- type; no Accept: application/json's, else the first; an Accept no template has: the
-- first). Templates are in media type order.
local function response_template(list, accept)
  local want = media_type(accept)
  for _, t in ipairs(list) do
    if t.type == (want or "application/json") then
      return t
    end
  end
  return list[1]
end
M.response_template = response_template

-- A header a template's override may set: a token name (lower case) and a value
-- without NUL, CR or LF.
local function valid_header(name, v)
  return find(name, "^[!#$%%&'*+%-.^_`|~%w]+$") and not find(v, "[%z\r\n]")
end

-- Sets name to v in a list of { name, value }: every entry of that name, or a new one.
local function set_header(list, name, v)
  local replaced = false
  for _, h in ipairs(list) do
    if h[1] == name then
      h[2], replaced = v, true
    end
  end
  if not replaced then
    list[#list + 1] = { name, v }
  end
end

-- $context.requestOverride (a request template's): header, querystring and path values
-- replace the mapped ones. Returns nil or why one cannot be sent.
apply_request_overrides = function(o, path_values, query, headers)
  for name, v in pairs(o.header or {}) do
    name = lower(name)
    if not valid_header(name, v) then
      return format("$context.requestOverride.header.%s: not a valid header", name)
    end
    if not OWN_HEADERS[name] then
      set_header(headers, name, v)
    end
  end
  for name, v in pairs(o.querystring or {}) do
    local kept = {}
    for _, q in ipairs(query) do
      if q[1] ~= name then
        kept[#kept + 1] = q
      end
    end
    kept[#kept + 1] = { name, v }
    for i = 1, #query do
      query[i] = nil
    end
    for i, q in ipairs(kept) do
      query[i] = q
    end
  end
  for name, v in pairs(o.path or {}) do
    path_values[name] = { v, false }
  end
  return nil
end

local function fail(kind, message, traceback, where, backend_status)
  return { error = message, traceback = traceback or "", failure = kind, where = where,
           backend_status = backend_status }
end

-- Runs the integration for req. Returns { status, headers = { { name, value } }, body,
-- backend_status } or { error, traceback, failure = "config" | "failure" | "timeout",
-- where (the transform that failed, or nil), backend_status (when the backend answered) }.
function M.run(use, req, call)
  -- the body: a request template's (chosen by the request's media type) or the client's
  local body = req:body()
  local rover, body_ctype
  local rts = use.request_templates
  if rts then
    local ctype = media_type(req:header("content-type")) or "application/json"
    local chosen
    for _, t in ipairs(rts) do
      if t.type == ctype then
        chosen = t
        break
      end
    end
    if chosen then
      local out, over = render(chosen, template_input(req, body), call)
      if out == nil then
        return fail("config", over.message, over.traceback, chosen.where)
      end
      body, rover, body_ctype = out, over.request, chosen.type
    elseif use.passthrough ~= "WHEN_NO_MATCH" then
      return { gateway = "UNSUPPORTED_MEDIA_TYPE" }
    end
  elseif use.passthrough == "NEVER" and body ~= "" then
    return { gateway = "UNSUPPORTED_MEDIA_TYPE" }
  end
  -- the backend request: path and query parameters, headers, body
  local path_values, query, headers = {}, {}, {}
  local has_ctype = false
  for _, p in ipairs(use.params) do
    local v = request_value(p.source, req)
    if v ~= nil then
      if type(v) == "table" and p.target ~= "querystring" then
        v = concat(v, ",") -- a multi-value source into one value: comma-joined, as AWS does
      end
      if p.target == "path" then
        path_values[p.name] = { v, p.source.kind == "path" }
      elseif p.target == "querystring" then
        for _, x in ipairs(type(v) == "table" and v or { v }) do
          query[#query + 1] = { p.name, x }
        end
      else
        headers[#headers + 1] = { p.name, v }
      end
    end
  end
  if rover then
    local err = apply_request_overrides(rover, path_values, query, headers)
    if err then
      return fail("config", err, nil, rts and use.where)
    end
  end
  for i, q in ipairs(query) do
    query[i] = encode(q[1]) .. "=" .. encode(q[2])
  end
  for _, h in ipairs(headers) do
    has_ctype = has_ctype or h[1] == "content-type"
  end
  local url = gsub(use.uri, "%${stageVariables%.([%w_]+)}", function(name)
    return req:stage_variable(name) or ""
  end)
  url = gsub(url, "{([%w_.-]+)(%+?)}", function(name, greedy)
    local v = path_values[name]
    if v == nil then
      return ""
    end
    -- a method path parameter is inserted as the client sent it, anything else encoded
    return v[2] and v[1] or encode(v[1], greedy == "+")
  end)
  if #query > 0 then
    url = url .. (find(url, "?", 1, true) and "&" or "?") .. concat(query, "&")
  end
  local rt = use.request_transform
  if rt then
    local out, ctype = M.transform(rt, body, request_ctx(req), call)
    if out == nil then
      return fail("config", ctype.message, ctype.traceback, rt.where)
    end
    body = out
    if ctype and not has_ctype then
      headers[#headers + 1] = { "content-type", ctype }
      has_ctype = true
    end
  end
  if body_ctype and not has_ctype then
    headers[#headers + 1] = { "content-type", body_ctype }
    has_ctype = true
  end
  if not has_ctype and body ~= "" then
    local ct = req:header("content-type")
    if ct then
      headers[#headers + 1] = { "content-type", ct }
    end
  end
  sort(headers, function(a, b)
    return a[1] < b[1]
  end)
  local res, err = require("moongate.http").request({ method = use.method or req.method, url = url, headers = headers,
    body = body, timeout = use.timeout_ms / 1000 })
  if not res then
    return fail(find(err, "^timeout") and "timeout" or "failure", err)
  end
  local rh = {}
  for k, v in pairs(res.headers or {}) do
    rh[lower(k)] = v
  end
  res = { status = res.status, headers = rh, body = res.body or "" }
  -- the integration response: the first whose pattern matches the status, else the default
  local status_text = tostring(res.status)
  local chosen
  for _, resp in ipairs(use.responses) do
    if resp.match and resp.match(status_text) then
      chosen = resp
      break
    end
  end
  if chosen == nil then
    for _, resp in ipairs(use.responses) do
      if not resp.pattern then
        chosen = resp
        break
      end
    end
  end
  if chosen == nil then
    return fail("config", format("no integration response matches the backend status %d and none is the default",
      res.status), nil, nil, res.status)
  end
  local out_headers, ctype = {}, nil
  for _, p in ipairs(chosen.params) do
    local v = response_value(p.source, req, res)
    if v ~= nil then
      if p.name == "content-type" then
        ctype = v
      else
        out_headers[#out_headers + 1] = { p.name, v }
      end
    end
  end
  local rbody = res.body
  local status = chosen.status
  if chosen.templates then
    local t = response_template(chosen.templates, req:header("accept"))
    if t.text ~= "" then -- an empty template passes the body through (AWS)
      local out, over = render(t, template_input(req, rbody), call)
      if out == nil then
        return fail("config", over.message, over.traceback, t.where, res.status)
      end
      rbody = out
      local o = over.response
      if o.status then
        local st = tonumber(o.status)
        if not st or st ~= math.floor(st) or st < 100 or st > 599 then
          return fail("config", format("$context.responseOverride.status must be a status code 100-599, got %q",
            o.status), nil, t.where, res.status)
        end
        status = st
      end
      for name, v in pairs(o.header or {}) do
        name = lower(name)
        if not valid_header(name, v) then
          return fail("config", format("$context.responseOverride.header.%s: not a valid header", name), nil,
            t.where, res.status)
        end
        if name == "content-type" then
          ctype = v
        else
          set_header(out_headers, name, v)
        end
      end
    end
    ctype = ctype or t.type
  end
  if chosen.transform then
    local ctx = { status = res.status, headers = res.headers, method_status = chosen.status,
      request = request_ctx(req) }
    local out, tctype = M.transform(chosen.transform, rbody, ctx, call)
    if out == nil then
      return fail("config", tctype.message, tctype.traceback, chosen.transform.where, res.status)
    end
    rbody = out
    ctype = ctype or tctype
  end
  out_headers[#out_headers + 1] = { "content-type", ctype or "application/json" }
  sort(out_headers, function(a, b)
    return a[1] < b[1]
  end)
  return { status = status, headers = out_headers, body = rbody, backend_status = res.status }
end

return M
