-- Throttling for Lua policies: the limits that apply to the current request, and
-- named token buckets shared by every worker (runtime/lua/ffi_throttle.c).
--
--   local throttle = require "moongate.throttle"
--   for _, l in ipairs(throttle.limits(r)) do ... l.policy, l.rate, l.burst, l.remaining ... end
--   local ok, info = throttle.take(r, "ip:" .. ip, 10, 20)   -- 10/s, burst 20
--
-- `r` is the request's C pointer (mgw_req_t *) that the request object carries.
-- Misuse raises error(msg, 2); a refusal is a normal result (ok == false).
local ffi = require "ffi"
local base = require "moongate.base"

ffi.cdef [[
typedef struct {
    const char *policy;
    double rate;
    uint64_t burst;
    uint64_t remaining;
    uint64_t reset_ms;
    uint64_t retry_after_ms;
} mgw_ffi_limit_t;
int mgw_ffi_throttle_limits(mgw_req_t *r, mgw_ffi_limit_t *out, int max);
int mgw_ffi_throttle_take(mgw_req_t *r, const char *key, size_t n, double rate, uint64_t burst,
                          mgw_ffi_limit_t *out, const char **err);
]]

local C = ffi.C
local ffi_string, ffi_new, tonumber, type, error = ffi.string, ffi.new, tonumber, type, error

local M = {}

-- Room for every throttle level a request can have (MGW_LIMITS_MAX, runtime/gw/req_int.h).
local LIMITS_MAX = base.constants.LIMITS.MAX
local limits_buf = ffi_new("mgw_ffi_limit_t[?]", LIMITS_MAX)
local take_buf = ffi_new("mgw_ffi_limit_t[1]")
local err_buf = ffi_new("const char *[1]")

local function to_table(l)
  return {
    policy = ffi_string(l.policy),
    rate = l.rate,
    burst = tonumber(l.burst),
    remaining = tonumber(l.remaining),
    reset_ms = tonumber(l.reset_ms),
    retry_after_ms = tonumber(l.retry_after_ms),
  }
end

-- The limits that apply to the request (account, stage-shared, stage or route, plan,
-- plan-route), with their remaining tokens; nothing is taken.
function M.limits(r)
  local n = C.mgw_ffi_throttle_limits(r, limits_buf, LIMITS_MAX)
  local out = {}
  for i = 0, n - 1 do
    out[i + 1] = to_table(limits_buf[i])
  end
  return out
end

-- Takes a token from the bucket named key (rate tokens/second, burst capacity).
-- Returns true, info when admitted; false, info when refused (info.retry_after_ms).
function M.take(r, key, rate, burst)
  if type(key) ~= "string" then
    error("bucket key must be a string", 2)
  end
  if type(rate) ~= "number" or type(burst) ~= "number" then
    error("rate and burst must be numbers", 2)
  end
  local rc = C.mgw_ffi_throttle_take(r, key, #key, rate, burst, take_buf, err_buf)
  if rc < 0 then
    error(ffi_string(err_buf[0]), 2)
  end
  return rc == 1, to_table(take_buf[0])
end

return M
