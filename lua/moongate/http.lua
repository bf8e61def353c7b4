-- moongate.http: a non-blocking HTTP client for hooks (runtime/lua/ffi_http.c, on the
-- runtime's HTTP client runtime/http/client.c).
--
--   local http = require "moongate.http"
--   local res, err = http.request{ method = "POST", url = "http://127.0.0.1:9001/introspect",
--                                  headers = { ["content-type"] = "application/json" },
--                                  body = "{}", timeout = 2 }
--   -- res.status, res.headers (lower-case names), res.body; or nil, "timeout"
--   local res, err = http.get(url, opts)
--   local res, err = http.post(url, body, opts)
--   local res, err = http.get("https://idp.internal/jwks", { ca_file = "/etc/moongate/ca.pem" })
--
-- headers is a table of name = value, or a list of { name, value } pairs, which are
-- sent in that order.
--
-- The hook yields to the worker's event loop while the call is in
-- flight; other requests are served meanwhile. timeout is in seconds (default 10)
-- and never goes past the hook's own deadline. Connections are kept alive and
-- reused per worker and origin. https:// verifies the server's certificate and
-- name against the system's CA store, or against ca_file (a PEM bundle) when
-- given. A failure to get a response is returned as nil and a message; misuse
-- (bad arguments, an unreadable ca_file, calling it outside a hook) raises an
-- error. In busted specs, testing.mock_http provides the answers.
local ffi = require "ffi"
require "moongate.base" -- mgw_req_t, mgw_str_t, mgw_hdr_t, mgw_ffi_runtime_now
local request = require "moongate.request"

ffi.cdef [[
typedef struct {
    const char *method;
    size_t method_len;
    const char *url;
    size_t url_len;
    const mgw_hdr_t *headers;
    int nheaders;
    const char *body;
    size_t body_len;
    uint64_t timeout_ms;
    uint64_t max_body;
    const char *ca_file;
    size_t ca_file_len;
} mgw_ffi_http_params_t;
typedef struct {
    int status;
    int nheaders;
    mgw_str_t body;
    const char *error;
} mgw_ffi_http_result_t;
int mgw_ffi_http_start(mgw_req_t *r, const mgw_ffi_http_params_t *p, const char **err);
int mgw_ffi_http_result(mgw_req_t *r, mgw_ffi_http_result_t *out, mgw_hdr_t *hdrs, int max);
int mgw_ffi_runtime_hook_start(mgw_req_t *r, uint64_t *ms);
]]

local C = ffi.C
local ffi_new, ffi_string = ffi.new, ffi.string
local type, pairs, tostring, tonumber, error, floor = type, pairs, tostring, tonumber, error, math.floor
local lower, upper = string.lower, string.upper

local M = {}

M.default_timeout = 10
M.default_max_body = 10 * 1024 * 1024

-- The transport used outside the runtime (busted): fn(req) -> res or nil, err.
local transport

function M.set_transport(fn)
  transport = fn
end

local params = ffi_new("mgw_ffi_http_params_t[1]")
local result = ffi_new("mgw_ffi_http_result_t[1]")
local err_buf = ffi_new("const char *[1]")
local u64 = ffi_new("uint64_t[1]")
local hdr_cap = 16
local hdr_buf = ffi_new("mgw_hdr_t[?]", hdr_cap)

local function check(opts)
  if type(opts) ~= "table" then
    error("http.request expects a table of options", 3)
  end
  if type(opts.url) ~= "string" then
    error("url must be a string", 3)
  end
  local method = upper(opts.method or (opts.body and "POST" or "GET"))
  if opts.body ~= nil and type(opts.body) ~= "string" then
    error("body must be a string", 3)
  end
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    error("headers must be a table", 3)
  end
  local timeout = opts.timeout or M.default_timeout
  if type(timeout) ~= "number" or timeout <= 0 then
    error("timeout must be a positive number of seconds", 3)
  end
  if opts.ca_file ~= nil and type(opts.ca_file) ~= "string" then
    error("ca_file must be a string (the path of a PEM file)", 3)
  end
  return method, timeout
end

-- The headers of opts as an iterator over name, value (a list of pairs keeps its order).
local function each_header(hs)
  if hs == nil then
    return pairs({})
  end
  if hs[1] ~= nil then
    local i = 0
    return function()
      i = i + 1
      local h = hs[i]
      if h then
        return h[1], h[2]
      end
    end
  end
  return pairs(hs)
end

local function headers_table(buf, n)
  local out = {}
  for i = 0, n - 1 do
    local k = ffi_string(buf[i].name.p, buf[i].name.n)
    local v = ffi_string(buf[i].value.p, buf[i].value.n)
    out[k] = out[k] and (out[k] .. ", " .. v) or v
  end
  return out
end

-- Makes a request; returns { status, headers, body } or nil and why.
function M.request(opts)
  local method, timeout = check(opts)
  local st = request.current()
  if st == nil then
    if request.current_state then
      error("moongate.http can only be waited for from the hook itself "
        .. "(not from a coroutine the policy created, nor from a log policy)", 2)
    end
    if transport == nil then
      error("moongate.http works inside the gateway's hooks; in specs use testing.mock_http", 2)
    end
    local hs = {}
    for k, v in each_header(opts.headers) do
      hs[lower(k)] = tostring(v)
    end
    return transport({ method = method, url = opts.url, headers = hs, body = opts.body or "",
                       timeout = timeout, ca_file = opts.ca_file })
  end
  local r = st.slot.r
  local deadline = st.deadline
  if not deadline then
    -- the hook's deadline, from when it started
    C.mgw_ffi_runtime_hook_start(r, u64)
    deadline = tonumber(u64[0]) + st.timeout_ms
    st.deadline = deadline
  end
  C.mgw_ffi_runtime_now(r, u64)
  local left = deadline - tonumber(u64[0])
  if left <= 0 then
    return nil, "timeout (the hook's deadline has passed)"
  end
  local ms = floor(timeout * 1000)
  if ms > left then
    ms = left
  end
  local keep, n = {}, 0
  for _ in each_header(opts.headers) do
    n = n + 1
  end
  if n > hdr_cap then
    hdr_cap = n
    hdr_buf = ffi_new("mgw_hdr_t[?]", hdr_cap)
  end
  local i = 0
  for k, v in each_header(opts.headers) do
    k, v = tostring(k), tostring(v)
    keep[#keep + 1], keep[#keep + 2] = k, v
    hdr_buf[i].name.p, hdr_buf[i].name.n = k, #k
    hdr_buf[i].value.p, hdr_buf[i].value.n = v, #v
    i = i + 1
  end
  local body = opts.body or ""
  local p = params[0]
  p.method, p.method_len = method, #method
  p.url, p.url_len = opts.url, #opts.url
  p.headers, p.nheaders = hdr_buf, n
  p.body, p.body_len = body, #body
  p.timeout_ms = ms
  p.max_body = opts.max_body or M.default_max_body
  local ca_file = opts.ca_file
  p.ca_file, p.ca_file_len = ca_file, ca_file and #ca_file or 0
  local rc = C.mgw_ffi_http_start(r, params, err_buf)
  if rc == -1 then
    error(ffi_string(err_buf[0]), 2)
  elseif rc ~= 0 then
    return nil, ffi_string(err_buf[0])
  end
  request.wait(2)
  rc = C.mgw_ffi_http_result(r, result, hdr_buf, hdr_cap)
  local res = result[0]
  if rc ~= 0 then
    return nil, ffi_string(res.error)
  end
  if res.nheaders > hdr_cap then
    hdr_cap = res.nheaders
    hdr_buf = ffi_new("mgw_hdr_t[?]", hdr_cap)
    C.mgw_ffi_http_result(r, result, hdr_buf, hdr_cap)
    res = result[0]
  end
  return {
    status = res.status,
    headers = headers_table(hdr_buf, res.nheaders),
    body = ffi_string(res.body.p, res.body.n),
  }
end

function M.get(url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.url, o.method = url, "GET"
  return M.request(o)
end

function M.post(url, body, opts)
  local o = {}
  for k, v in pairs(opts or {}) do
    o[k] = v
  end
  o.url, o.method, o.body = url, "POST", body
  return M.request(o)
end

return M
