-- moongate.request: the request object hooks receive, in two backings with one API.
--
--   request.from_slot(s, kept)  the runtime's: backed by the C request through the FFI
--                         (runtime/lua/ffi_request.c), read lazily when a script asks
--   request.new{ ... }    the busted kit's: backed by a plain table (see testing.lua)
--
-- Fields: method, path, raw_path, route_path, query_string, route_key, request_id,
-- source_ip, stage, api_id, host, protocol, connection_id (a WebSocket event's
-- connection; nil for HTTP requests), message_type (a WebSocket message's: "TEXT" or
-- "BINARY"; nil otherwise), api_type (the API's protocol: "http", "rest" or
-- "websocket"), ctx (a table shared by every hook of the
-- request), authorizer (the Lua authorizer's context, or the claims of the token a JWT
-- authorizer allowed, once authorized), jwt ({ claims, scopes } of that token: claim
-- values as strings, scopes nil when the token has none), client_cert
-- (mutual TLS: { pem, subject_dn, issuer_dn, serial_number, not_before, not_after }),
-- r (the C request pointer, for runtime modules such as moongate.throttle; nil in the
-- kit).
-- Methods: header(name), headers(), header_lists() (payload format 1.0's last values and
-- lists of values), query(name), query_params(), path_param(name),
-- path_params(), stage_variable(name), stage_variables(), cookie(name), cookies(),
-- body(), context(name), set_header(name, value), clear_header(name), event().
local ffi = require "ffi"
local base = require "moongate.base"

ffi.cdef [[
int mgw_ffi_req_field(mgw_req_t *r, int field, mgw_str_t *out);
int mgw_ffi_req_header(mgw_req_t *r, const char *name, size_t n, mgw_str_t *out);
int mgw_ffi_req_headers(mgw_req_t *r, mgw_hdr_t *out, int max);
int mgw_ffi_req_params(mgw_req_t *r, mgw_kv_t *out, int max);
int mgw_ffi_req_stage_variables(mgw_req_t *r, mgw_kv_t *out, int max);
int mgw_ffi_req_body(mgw_req_t *r, mgw_str_t *out, const char **err);
int mgw_ffi_req_set_header(mgw_req_t *r, const char *name, size_t nn, const char *value,
                           size_t vn, const char **err);
int mgw_ffi_req_context(mgw_req_t *r, const char *name, size_t n, mgw_str_t *out);
int mgw_ffi_req_time(mgw_req_t *r, uint64_t *epoch_ms);
int mgw_ffi_req_jwt_claims(mgw_req_t *r, mgw_kv_t *out, int max);
int mgw_ffi_req_authorizer(mgw_req_t *r, mgw_kv_t *out, int max);
int mgw_ffi_req_jwt_scopes(mgw_req_t *r, mgw_str_t *out, int max);
]]

local C = ffi.C
local ffi_string, ffi_new, ffi_cast = ffi.string, ffi.new, ffi.cast
local type, error, pairs, ipairs, tostring, tonumber, rawget, rawset, setmetatable =
  type, error, pairs, ipairs, tostring, tonumber, rawget, rawset, setmetatable
local co_running = coroutine.running
local lower, gsub, find, char, match, gmatch, sub =
  string.lower, string.gsub, string.find, string.char, string.match, string.gmatch, string.sub
local concat = table.concat
local table_clear = require "table.clear"

local M = {}

---------------------------------------------------------------------------
-- Waiting (the request body, moongate.http): only hooks the runtime runs wait
---------------------------------------------------------------------------

-- The state of the hook running now in the runtime (moongate.runtime sets it):
-- { slot = <mgw_lslot_t *>, co = the runner thread it may wait in (nil: it may not wait),
-- deadline, timeout_ms, ... }.
M.current_state = nil

-- What a hook's runner yields to C when it waits for the event loop.
M.WAIT = setmetatable({}, { __tostring = function() return "moongate wait" end })

local waiter = nil

-- The runtime's wait: waiter(st) yields the runner and returns once C resumed it.
function M.set_waiter(fn)
  waiter = fn
end

-- The state of the hook running now, or nil outside the runtime (busted).
function M.current()
  local st = M.current_state
  if st and st.co == co_running() then
    return st
  end
  return nil
end

-- Yields the running hook until the runtime resumes it (the awaited event happened).
function M.wait(level)
  local st = M.current_state
  if not (st and st.co and st.co == co_running()) then
    error("the request body and moongate.http can only be waited for from the hook itself "
      .. "(not from a coroutine the policy created, nor from a log policy)", (level or 1) + 1)
  end
  waiter(st)
end

---------------------------------------------------------------------------
-- Pure helpers shared by both backings
---------------------------------------------------------------------------

local function hex_char(h)
  return char(tonumber(h, 16))
end

local function unescape(s)
  return (gsub(s, "%%(%x%x)", hex_char))
end
M.unescape = unescape

-- "a=1&b=2&a=3" -> { a = "1,3", b = "2" } (decoded; repeated names joined with
-- "," as in Amazon API Gateway's queryStringParameters).
function M.parse_query(qs)
  local out = {}
  if qs == nil or qs == "" then
    return out
  end
  for part in gmatch(qs, "[^&]+") do
    local k, v = match(part, "^([^=]*)=(.*)$")
    if not k then
      k, v = part, ""
    end
    k, v = unescape(k), unescape(v)
    if k ~= "" then
      local old = out[k]
      out[k] = old and (old .. "," .. v) or v
    end
  end
  return out
end

-- "a=1&b=2&a=3" -> { a = "3", b = "2" } (the last value of each name) and { a = { "1",
-- "3" }, b = { "2" } } (every value, in order): payload format 1.0's
-- queryStringParameters and multiValueQueryStringParameters.
function M.parse_query_lists(qs)
  local last, all = {}, {}
  if qs == nil or qs == "" then
    return last, all
  end
  for part in gmatch(qs, "[^&]+") do
    local k, v = match(part, "^([^=]*)=(.*)$")
    if not k then
      k, v = part, ""
    end
    k, v = unescape(k), unescape(v)
    if k ~= "" then
      last[k] = v
      local l = all[k]
      if l == nil then
        all[k] = { v }
      else
        l[#l + 1] = v
      end
    end
  end
  return last, all
end

-- The Cookie header -> { "a=1", "b=2" } (the event's cookies list).
function M.parse_cookies(header)
  local out = {}
  if header then
    for c in gmatch(header, "[^;]+") do
      c = gsub(gsub(c, "^%s+", ""), "%s+$", "")
      if c ~= "" then
        out[#out + 1] = c
      end
    end
  end
  return out
end

local function cookie_value(cookies, name)
  for _, c in ipairs(cookies) do
    local k, v = match(c, "^([^=]*)=(.*)$")
    if k == name then
      return v
    end
  end
  return nil
end

-- Every $context variable a hook may read, plus the authorizer.KEY and custom.NAME
-- families: the gateway's list (runtime/conf/template.h), generated into
-- moongate.constants; tests/unit/lua/test_hooks.c checks that it arrives here whole
-- (the kit and config validation use this one).
M.CONTEXT_VARIABLES = base.constants.CONTEXT_VARIABLES
local KNOWN = {}
for _, v in ipairs(M.CONTEXT_VARIABLES) do
  KNOWN[v] = true
end

function M.is_context_variable(name)
  return KNOWN[name] == true or (find(name, "^authorizer%.[%w_%.]+$") ~= nil)
    or (find(name, "^custom%.[%w_%.]+$") ~= nil)
end

local function check_header(name, value, level)
  if type(name) ~= "string" or not find(name, "^[!#%$%%&'%*%+%-%.%^_`|~%w]+$") or #name > 256 then
    error("header name must be an HTTP token", level + 1)
  end
  if value ~= nil and (type(value) ~= "string" or find(value, "[%z\r\n]")) then
    error("header value must be a string without CR, LF or NUL", level + 1)
  end
end

-- Methods defined once on top of each backing's raw accessors.
local function add_common(class)
  function class:query(name)
    return self:query_params()[name]
  end
  function class:path_param(name)
    return self:path_params()[name]
  end
  function class:stage_variable(name)
    return self:stage_variables()[name]
  end
  function class:cookies()
    return M.parse_cookies(self:header("cookie"))
  end
  function class:cookie(name)
    return cookie_value(self:cookies(), name)
  end
  function class:clear_header(name)
    return self:set_header(name, nil)
  end
  function class:event()
    return require("moongate.hooks").event(self)
  end
end

---------------------------------------------------------------------------
-- The FFI backing (the runtime)
---------------------------------------------------------------------------

-- The fields of mgw_ffi_req_field by name (MGW_REQ_FIELDS in runtime/lua/lua_int.h).
local FIELDS = base.constants.REQUEST_FIELDS
-- Fields that never change during a request and may be cached on the object.
local FIXED = {
  method = true, path = true, raw_path = true, query_string = true, request_id = true,
  source_ip = true, host = true, protocol = true, connection_id = true, message_type = true,
  api_type = true,
}

local str_buf = ffi_new("mgw_str_t[1]")
local err_buf = ffi_new("const char *[1]")
local u64_buf = ffi_new("uint64_t[1]")
local list_cap = 64
local list_buf = ffi_new("mgw_kv_t[?]", list_cap)

local Ffi = {}
add_common(Ffi)

-- The runtime's request object is { slot, serial, kept }. kept is its slot's table,
-- reused request after request (from_slot clears it): the fields read once (FIXED), ctx
-- and the values made when first asked live there. Kept on the object itself, they grew
-- a hash part per request, and LuaJIT's re-hashes at the first, second, third and fifth
-- named key cost more than the C calls they save. kept is read only after cptr: an
-- object used after its request ended errors, it never sees the next request's values.
local function cptr(self, level)
  local slot = rawget(self, 1)
  if slot == nil or slot.serial ~= rawget(self, 2) then
    error("the request object is used after its request ended", level + 1)
  end
  return slot.r
end

local function field(r, kept, k)
  if C.mgw_ffi_req_field(r, FIELDS[k], str_buf) ~= 0 then
    return nil
  end
  local v = ffi_string(str_buf[0].p, str_buf[0].n)
  if FIXED[k] then
    kept[k] = v
  end
  return v
end

-- A count-then-fill list of r (fill: an mgw_ffi_req_* reader) in the shared buffer: the
-- buffer and the count (-1 when fill says there is none).
local function list(r, fill)
  local n = fill(r, list_buf, list_cap)
  if n > list_cap then
    list_cap = n
    list_buf = ffi_new("mgw_kv_t[?]", list_cap)
    n = fill(r, list_buf, list_cap)
  end
  return list_buf, n
end

local function kv_table(buf, n, join)
  local out = {}
  for i = 0, n - 1 do
    local k = ffi_string(buf[i].name.p, buf[i].name.n)
    local v = ffi_string(buf[i].value.p, buf[i].value.n)
    local old = join and out[k]
    out[k] = old and (old .. "," .. v) or v
  end
  return out
end

-- A count-then-fill list of r (fill) as { name = value }, or nil when fill says there is
-- none (the authorizers' contexts before one has allowed the request).
local function kv_of(r, fill)
  local buf, n = list(r, fill)
  if n >= 0 then
    return kv_table(buf, n, false)
  end
end

-- The client certificate of a mutual-TLS connection, or false without one.
local function client_cert(self, kept)
  local pem = self:context("identity.clientCert.clientCertPem")
  local cert = false
  if pem then
    cert = {
      pem = pem,
      subject_dn = self:context("identity.clientCert.subjectDN"),
      issuer_dn = self:context("identity.clientCert.issuerDN"),
      serial_number = self:context("identity.clientCert.serialNumber"),
      not_before = self:context("identity.clientCert.validity.notBefore"),
      not_after = self:context("identity.clientCert.validity.notAfter"),
    }
  end
  kept.client_cert = cert
  return cert
end

local scope_cap = 16
local scope_buf = ffi_new("mgw_str_t[?]", scope_cap)

-- The token a JWT authorizer allowed the request with: { claims, scopes }, kept with
-- its claims as the object's authorizer; nil (not kept: the authorizer may not have run
-- yet) without one.
local function jwt(r, kept)
  local claims = kv_of(r, C.mgw_ffi_req_jwt_claims)
  if claims == nil then
    return nil
  end
  local scopes
  local ns = C.mgw_ffi_req_jwt_scopes(r, scope_buf, scope_cap)
  if ns > scope_cap then
    scope_cap = ns
    scope_buf = ffi_new("mgw_str_t[?]", scope_cap)
    ns = C.mgw_ffi_req_jwt_scopes(r, scope_buf, scope_cap)
  end
  if ns >= 0 then
    scopes = {}
    for i = 0, ns - 1 do
      scopes[i + 1] = ffi_string(scope_buf[i].p, scope_buf[i].n)
    end
  end
  local t = { claims = claims, scopes = scopes }
  kept.jwt = t
  if kept.authorizer == nil then
    kept.authorizer = claims
  end
  return t
end

-- The context a Lua authorizer allowed the request with, kept (hooks may change it);
-- nil (not kept) before one has.
local function lua_authorizer(r, kept)
  local t = kv_of(r, C.mgw_ffi_req_authorizer)
  kept.authorizer = t
  return t
end

Ffi.__index = function(self, k)
  local m = Ffi[k]
  if m ~= nil then
    return m
  end
  local r = cptr(self, 2)
  local kept = rawget(self, 3)
  local v = kept[k]
  if v ~= nil then
    return v or nil -- false: looked for, there is none (client_cert)
  end
  if k == "jwt" then
    return jwt(r, kept)
  end
  if k == "authorizer" then
    local t = jwt(r, kept)
    if t then
      return t.claims
    end
    return lua_authorizer(r, kept)
  end
  if FIELDS[k] then
    return field(r, kept, k)
  end
  if k == "r" then
    return r
  end
  if k == "ctx" then -- made when first used
    local t = {}
    kept.ctx = t
    return t
  end
  if k == "client_cert" then
    return client_cert(self, kept) or nil
  end
  return nil
end

function Ffi:header(name)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  if C.mgw_ffi_req_header(cptr(self, 2), name, #name, str_buf) ~= 0 then
    return nil
  end
  return ffi_string(str_buf[0].p, str_buf[0].n)
end

-- Calls fill(r, buf, max) count-then-fill; returns buf and the count.
local function fill_headers(r, buf, max)
  return C.mgw_ffi_req_headers(r, ffi_cast("mgw_hdr_t *", buf), max)
end

function Ffi:headers()
  local buf, n = list(cptr(self, 2), fill_headers)
  return kv_table(buf, n, true)
end

-- The headers as payload format 1.0 shows them: { name = last value } and { name = {
-- every value, in order } }.
function Ffi:header_lists()
  local buf, n = list(cptr(self, 2), fill_headers)
  local last, all = {}, {}
  for i = 0, n - 1 do
    local k = ffi_string(buf[i].name.p, buf[i].name.n)
    local v = ffi_string(buf[i].value.p, buf[i].value.n)
    last[k] = v
    local l = all[k]
    if l == nil then
      all[k] = { v }
    else
      l[#l + 1] = v
    end
  end
  return last, all
end

function Ffi:query_params()
  cptr(self, 2)
  local kept = rawget(self, 3)
  local q = kept._query
  if q == nil then
    q = M.parse_query(self.query_string)
    kept._query = q
  end
  return q
end

function Ffi:path_params()
  local buf, n = list(cptr(self, 2), C.mgw_ffi_req_params)
  return kv_table(buf, n, false)
end

function Ffi:stage_variables()
  local r = cptr(self, 2)
  local kept = rawget(self, 3)
  local v = kept._stage_variables
  if v == nil then
    local buf, n = list(r, C.mgw_ffi_req_stage_variables)
    v = kv_table(buf, n, false)
    kept._stage_variables = v
  end
  return v
end

-- The whole request body; waits (yielding the hook) until it has arrived.
function Ffi:body()
  local r = cptr(self, 2)
  local kept = rawget(self, 3)
  local b = kept._body
  if b ~= nil then
    return b
  end
  local rc = C.mgw_ffi_req_body(r, str_buf, err_buf)
  while rc == 1 do
    M.wait(2)
    rc = C.mgw_ffi_req_body(cptr(self, 2), str_buf, err_buf)
  end
  if rc ~= 0 then
    error(ffi_string(err_buf[0]), 2)
  end
  b = ffi_string(str_buf[0].p, str_buf[0].n)
  kept._body = b
  return b
end

function Ffi:set_header(name, value)
  check_header(name, value, 2)
  local vn = value and #value or 0
  if C.mgw_ffi_req_set_header(cptr(self, 2), name, #name, value, vn, err_buf) ~= 0 then
    error(ffi_string(err_buf[0]), 2)
  end
end

-- A $context variable as the access log shows it ("identity.sourceIp"), or nil.
function Ffi:context(name)
  if type(name) ~= "string" then
    error("$context variable name must be a string", 2)
  end
  local rc = C.mgw_ffi_req_context(cptr(self, 2), name, #name, str_buf)
  if rc == -2 then
    error("unknown $context variable " .. name, 2)
  elseif rc ~= 0 then
    return nil
  end
  return ffi_string(str_buf[0].p, str_buf[0].n)
end

-- Milliseconds since the epoch when the request started.
function Ffi:time_epoch()
  C.mgw_ffi_req_time(cptr(self, 2), u64_buf)
  return tonumber(u64_buf[0])
end

-- The request object for the C request in slot (an mgw_lslot_t *): { slot, serial,
-- kept } (an array part only: one allocation, where two hash fields cost two; kept is
-- the slot's own table, emptied here). It works while the slot's serial is the one it
-- was made with: once the request ended, a use raises an error, not a crash.
function M.from_slot(slot, kept)
  table_clear(kept)
  return setmetatable({ slot, slot.serial, kept }, Ffi)
end

---------------------------------------------------------------------------
-- The table backing (the busted kit)
---------------------------------------------------------------------------

local Plain = {}
add_common(Plain)
Plain.__index = Plain

-- The kit's headers: name -> value, where a list of values is a header sent more than
-- once (its values joined with ",", as the gateway's headers() joins them), and name ->
-- that list.
local function header_map(t)
  local out, lists = {}, {}
  for k, v in pairs(t or {}) do
    if type(k) ~= "string" then
      error("header names must be strings", 3)
    end
    local name = lower(k)
    if type(v) == "table" then
      local l = {}
      for i, x in ipairs(v) do
        l[i] = tostring(x)
      end
      out[name], lists[name] = concat(l, ","), l
    else
      out[name] = tostring(v)
    end
  end
  return out, lists
end

local function string_map(t)
  local out = {}
  for k, v in pairs(t or {}) do
    out[tostring(k)] = tostring(v)
  end
  return out
end

-- A claim's value as the gateway gives it to Lua and $context.authorizer.claims.NAME:
-- a string as is, a number, boolean or null (ngx.null-free: nil never is a value here) as
-- its JSON text, a table as compact JSON (arrays when it has a sequence).
local function claim_text(v)
  local tv = type(v)
  if tv == "string" then
    return v
  elseif tv == "number" then
    if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
      return string.format("%d", v)
    end
    return string.format("%.17g", v)
  elseif tv == "boolean" then
    return tostring(v)
  elseif tv == "table" then
    local cjson = require "cjson"
    local ok, text = pcall(cjson.encode, v)
    if ok then
      return text
    end
  end
  error("claim values must be strings, numbers, booleans or tables, got " .. tv, 4)
end

-- A JWT authorizer's token for the kit: { claims = { name = value }, scopes = list or nil }
-- with the claims converted as the gateway converts them.
function M.jwt_token(t)
  if type(t) ~= "table" then
    error("jwt must be a table { claims = {...}, scopes = {...} }", 3)
  end
  local claims = {}
  for k, v in pairs(t.claims or {}) do
    claims[tostring(k)] = claim_text(v)
  end
  local scopes
  if t.scopes ~= nil then
    scopes = {}
    for i, s in ipairs(t.scopes) do
      scopes[i] = tostring(s)
    end
  end
  return { claims = claims, scopes = scopes }
end

-- A plain request: t.method (default GET), t.path (default "/"), t.headers (a value may
-- be a list: a header sent more than once),
-- t.query (a string or a table), t.body, t.source_ip, t.path_params,
-- t.stage_variables, t.route_key, t.stage, t.api_id, t.request_id, t.host,
-- t.protocol, t.authorizer (an authorizer context), t.jwt (a JWT authorizer's token:
-- { claims = {...}, scopes = {...} }; its claims are then the authorizer, claim values
-- converted to strings as the gateway gives them), t.context ($context values by
-- name, for those the builder cannot derive), t.time (epoch ms), t.connection_id (a
-- WebSocket event: see testing.websocket), t.message_type (a WebSocket message: "TEXT"
-- or "BINARY"), t.kept (a WebSocket event: { authorizer,
-- context } kept for its connection), t.api_type ("http" (default), "rest" or
-- "websocket": a REST request's requestId and extendedRequestId differ, its
-- requestTimeEpoch is in milliseconds), t.extended_request_id.
local API_TYPES = { http = true, rest = true, websocket = true }

function M.new(t)
  t = t or {}
  local api_type = t.api_type or (t.connection_id and "websocket") or "http"
  if not API_TYPES[api_type] then
    error('api_type must be "http", "rest" or "websocket", got ' .. tostring(api_type), 3)
  end
  local path = t.path or "/"
  local query = t.query
  local qs = ""
  if type(query) == "table" then
    local parts = {}
    for k, v in pairs(query) do
      parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
    end
    table.sort(parts)
    qs = concat(parts, "&")
  elseif type(query) == "string" then
    qs = query
  end
  local p, q = match(path, "^([^?]*)%?(.*)$")
  if p then
    path, qs = p, q
  end
  local headers, header_lists = header_map(t.headers)
  local jwt = t.jwt and M.jwt_token(t.jwt)
  local req = setmetatable({
    method = t.method or "GET",
    path = path,
    raw_path = t.raw_path or path,
    route_path = t.route_path or path,
    query_string = qs,
    route_key = t.route_key,
    request_id = t.request_id
      or (api_type == "rest" and "c0ffee00-0000-4000-8000-000000000001" or "kit-request-id"),
    api_type = api_type,
    _extended_request_id = t.extended_request_id,
    source_ip = t.source_ip or "127.0.0.1",
    stage = t.stage or "$default",
    api_id = t.api_id or "api",
    host = t.host or headers.host,
    protocol = t.protocol or "HTTP/1.1",
    authorizer = t.authorizer or (jwt and jwt.claims),
    jwt = jwt,
    client_cert = t.client_cert,
    connection_id = t.connection_id,
    message_type = t.message_type,
    _kept = t.kept,
    ctx = {},
    _headers = headers,
    _header_lists = header_lists,
    _body = t.body or "",
    _path_params = string_map(t.path_params),
    _stage_variables = string_map(t.stage_variables),
    _context = t.context or {},
    _time = t.time or 1700000000000,
  }, Plain)
  return req
end

function Plain:header(name)
  if type(name) ~= "string" then
    error("header name must be a string", 2)
  end
  return self._headers[lower(name)]
end

function Plain:headers()
  local out = {}
  for k, v in pairs(self._headers) do
    out[k] = v
  end
  return out
end

function Plain:header_lists()
  local last, all = {}, {}
  local lists = self._header_lists
  for k, v in pairs(self._headers) do
    local l = lists[k]
    if l then
      local copy = {}
      for i, x in ipairs(l) do
        copy[i] = x
      end
      last[k], all[k] = copy[#copy], copy
    else
      last[k], all[k] = v, { v }
    end
  end
  return last, all
end

function Plain:query_params()
  return M.parse_query(self.query_string)
end

function Plain:path_params()
  return self._path_params
end

function Plain:stage_variables()
  return self._stage_variables
end

function Plain:body()
  return self._body
end

function Plain:set_header(name, value)
  check_header(name, value, 2)
  if self._frozen then
    error("request headers can only be changed before the integration", 2)
  end
  self._headers[lower(name)] = value
  self._header_lists[lower(name)] = nil
end

-- $context.resourceId as the gateway makes it (runtime/gw/ids.c): ten characters of
-- [a-z0-9] from the SHA-256 of "API-ID PATH-TEMPLATE", through OpenSSL's libcrypto.
local crypto
local function resource_id(api_id, route_key)
  if not crypto then
    ffi.cdef("unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);")
    local ok, lib = pcall(ffi.load, "libcrypto.so.3")
    crypto = ok and lib or ffi.load("crypto")
  end
  local src = (api_id or "") .. " " .. (match(route_key, "^%S+ (.*)$") or route_key)
  local d = ffi_new("unsigned char[32]")
  crypto.SHA256(src, #src, d)
  local alnum, out = "abcdefghijklmnopqrstuvwxyz0123456789", {}
  for i = 0, 9 do
    local k = d[i] % 36 + 1
    out[#out + 1] = sub(alnum, k, k)
  end
  return concat(out)
end

-- $context values the builder derives; others come from t.context.
local DERIVED = {
  requestId = function(s) return s.request_id end,
  extendedRequestId = function(s)
    return s._extended_request_id or (s.api_type == "rest" and "kit-extended-id" or s.request_id)
  end,
  resourcePath = function(s) return s.route_key and match(s.route_key, "^%S+ (.*)$") end,
  resourceId = function(s) return s.route_key and resource_id(s.api_id, s.route_key) end,
  apiId = function(s) return s.api_id end,
  stage = function(s) return s.stage end,
  routeKey = function(s) return s.route_key end,
  connectionId = function(s) return s.connection_id end,
  httpMethod = function(s) return s.method end,
  path = function(s) return s.raw_path end,
  protocol = function(s) return s.protocol end,
  ["identity.sourceIp"] = function(s) return s.source_ip end,
  ["identity.userAgent"] = function(s) return s._headers["user-agent"] end,
  domainName = function(s) return s.host end,
  domainPrefix = function(s) return s.host and match(s.host, "^[^.]*") end,
  requestTimeEpoch = function(s)
    return tostring(s.api_type == "rest" and math.floor(s._time) or math.floor(s._time / 1000))
  end,
  requestTime = function(s) return os.date("!%d/%b/%Y:%H:%M:%S +0000", math.floor(s._time / 1000)) end,
}

function Plain:context(name)
  if type(name) ~= "string" then
    error("$context variable name must be a string", 2)
  end
  if not M.is_context_variable(name) then
    error("unknown $context variable " .. name, 2)
  end
  local v = self._context[name]
  if v == nil and DERIVED[name] then
    v = DERIVED[name](self)
  end
  local jwt = rawget(self, "jwt")
  if v == nil and jwt then
    local key = match(name, "^authorizer%.claims%.(.+)$")
    v = key and jwt.claims[key]
  elseif v == nil and self.authorizer then
    local key = match(name, "^authorizer%.(.+)$")
    v = key and self.authorizer[key]
  end
  return v ~= nil and tostring(v) or nil
end

function Plain:time_epoch()
  return self._time
end

M.Ffi, M.Plain = Ffi, Plain

-- True for a request object of either backing.
function M.is_request(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt == Ffi or mt == Plain
end

return M
