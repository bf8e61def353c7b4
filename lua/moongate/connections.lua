-- moongate.connections: the @connections operations on WebSocket connections, from
-- hooks (runtime/lua/ffi_ws.c over runtime/ws/ws.h), and the values the gateway keeps
-- per connection for later events.
--
--   local connections = require "moongate.connections"
--   local ok, err = connections.send(id, "hello")                     -- a text message
--   local ok, err = connections.send(id, bytes, { binary = true })    -- a binary one
--   local info, err = connections.info(id)
--   -- info.connectedAt, info.lastActiveAt ("2026-12-04T10:17:57.123Z", as AWS's
--   -- GetConnection), info.identity.sourceIp, info.identity.userAgent
--   local ok, err = connections.close(id)  -- the connection's $disconnect runs
--
-- The connection may be on any worker: when it is another's, the hook yields to the
-- event loop until that worker answered (other requests are served meanwhile). A
-- failure is nil, a reason and the status the @connections HTTP API answers for it:
-- "gone" (410: no such connection, or it is closing), "too large" (413: over 128 KB),
-- "throttled" (429: the client's send queue was full; the connection is closed with
-- 1008), "invalid connection id" (400), "invalid message" (400: text that is not
-- UTF-8), "unavailable" (503: a connection of another node of a cluster that cannot
-- be reached now: Redis is down, or the node did not answer). Misuse (an argument of the wrong type, a call from a log policy or from a
-- coroutine the policy made) raises an error. Any hook of any API may call it (an HTTP
-- API's handler may broadcast). In busted specs, testing.mock_connections records the
-- calls and answers them.
local ffi = require "ffi"
require "moongate.base" -- mgw_req_t, mgw_str_t
local request = require "moongate.request"
local cjson = require "cjson.safe"

ffi.cdef [[
int mgw_ffi_ws_send(mgw_req_t *r, const char *id, size_t idn, const char *data, size_t n,
                    int binary, const char **err);
int mgw_ffi_ws_info(mgw_req_t *r, const char *id, size_t idn, const char **err);
int mgw_ffi_ws_close(mgw_req_t *r, const char *id, size_t idn, const char **err);
int mgw_ffi_ws_result(mgw_req_t *r, int *status, mgw_str_t *info);
int mgw_ffi_ws_keep(mgw_req_t *r);
]]

local C = ffi.C
local ffi_new, ffi_string = ffi.new, ffi.string
local type, error, pairs, tostring = type, error, pairs, tostring

local M = {}

-- Why an operation failed, by the status @connections answers.
M.REASONS = {
  [400] = "invalid message",
  [410] = "gone",
  [413] = "too large",
  [429] = "throttled",
  [503] = "unavailable",
}

local function reason(status)
  return M.REASONS[status] or ("failed (status " .. tostring(status) .. ")")
end

-- The fake used outside the runtime (busted): fn({ op = "send" | "info" | "close", id,
-- data, binary }) -> what the function returns.
local transport

function M.set_transport(fn)
  transport = fn
end

local err_buf = ffi_new("const char *[1]")
local status_buf = ffi_new("int[1]")
local info_buf = ffi_new("mgw_str_t[1]")

local function check_id(id, what)
  if type(id) ~= "string" then
    error(what .. ": connection id must be a string, got " .. type(id), 3)
  end
end

-- The C request of the hook running now, or nil with the fake to use instead.
local function caller()
  local st = request.current()
  if st then
    return st.slot.r
  end
  if request.current_state then
    error("moongate.connections can only be used from the hook itself "
      .. "(not from a coroutine the policy created, nor from a log policy)", 3)
  end
  if transport == nil then
    error("moongate.connections works inside the gateway's hooks; "
      .. "in specs use testing.mock_connections", 3)
  end
  return nil
end

-- Runs an operation that start(r, err) began; returns the status and info text.
local function finish(r, rc, level)
  if rc == -1 then
    error(ffi_string(err_buf[0]), level + 1)
  elseif rc == -2 then
    return 400, nil, ffi_string(err_buf[0])
  elseif rc == 1 then
    request.wait(level + 1)
  end
  C.mgw_ffi_ws_result(r, status_buf, info_buf)
  local info = info_buf[0]
  return status_buf[0], info.n > 0 and ffi_string(info.p, info.n) or nil
end

-- Sends data (a string) to connection id as a text message (it must be UTF-8) or, with
-- opts.binary, a binary one. Returns true, or nil, a reason and a status.
function M.send(id, data, opts)
  check_id(id, "send")
  if type(data) ~= "string" then
    error("send: data must be a string, got " .. type(data), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("send: options must be a table", 2)
  end
  local binary = opts and opts.binary
  if binary ~= nil and type(binary) ~= "boolean" then
    error("send: binary must be a boolean", 2)
  end
  local r = caller()
  if r == nil then
    return transport({ op = "send", id = id, data = data, binary = binary == true })
  end
  local rc = C.mgw_ffi_ws_send(r, id, #id, data, #data, binary and 1 or 0, err_buf)
  local status, _, why = finish(r, rc, 2)
  if status == 200 then
    return true
  end
  return nil, why or reason(status), status
end

-- What is known of connection id: { connectedAt, lastActiveAt (ISO 8601 times with
-- milliseconds, UTC), identity = { sourceIp, userAgent } }, or nil, a reason and a status.
function M.info(id)
  check_id(id, "info")
  local r = caller()
  if r == nil then
    return transport({ op = "info", id = id })
  end
  local rc = C.mgw_ffi_ws_info(r, id, #id, err_buf)
  local status, text, why = finish(r, rc, 2)
  if status ~= 200 then
    return nil, why or reason(status), status
  end
  local info = text and cjson.decode(text)
  if type(info) ~= "table" then
    return nil, "invalid connection information", 500
  end
  return info
end

-- Closes connection id (close code 1000; its $disconnect runs). Returns true, or nil, a
-- reason and a status.
function M.close(id)
  check_id(id, "close")
  local r = caller()
  if r == nil then
    return transport({ op = "close", id = id })
  end
  local rc = C.mgw_ffi_ws_close(r, id, #id, err_buf)
  local status, _, why = finish(r, rc, 2)
  if status == 204 or status == 200 then
    return true
  end
  return nil, why or reason(status), status
end

---------------------------------------------------------------------------
-- Values kept per connection (the worker's; the runtime fills them in)
---------------------------------------------------------------------------

-- connection id -> { authorizer = requestContext.authorizer, context =
-- requestContext.connectionContext }: what the $connect route's authorizer and Lua
-- integration produced, for the connection's later events on this worker (a
-- connection's events all run on the worker that owns it).
local kept = {}

-- The values kept for connection id, or nil.
function M.kept(id)
  return kept[id]
end

-- Keeps value as what (authorizer, context) of connection id, for the C request r of
-- one of its events (the connection's end then drops it).
function M.keep(r, id, what, value)
  local k = kept[id]
  if k == nil then
    k = {}
    kept[id] = k
  end
  k[what] = value
  if r ~= nil then
    C.mgw_ffi_ws_keep(r)
  end
end

-- Connection id ended (runtime.conn_end): its values go.
function M.forget(id)
  kept[id] = nil
end

-- For specs and diagnostics: how many connections have values kept.
function M.kept_count()
  local n = 0
  for _ in pairs(kept) do
    n = n + 1
  end
  return n
end

return M
