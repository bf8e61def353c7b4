-- moongate.base: what the FFI modules (request, runtime, http, throttle) share, as
-- lua-resty-core's base.lua does: the C types every boundary uses, declared once here
-- (LuaJIT silently keeps the first of two typedefs of one name, so copies that drifted
-- apart would go unnoticed), and the constants shared with C.
--
--   local base = require "moongate.base"
--   local K = base.constants   -- K.HOOK.WAF, K.CODE.OK, K.REQUEST_FIELDS, ...
--
-- The constants are moongate.constants, which `make` generates from the runtime
-- headers (tools/gen_constants.c); a number C and Lua share is never typed into Lua.
-- Each module keeps the ffi.cdef of its own mgw_ffi_* functions (STYLE.md rule 12).
local ffi = require "ffi"

-- mgw_str_t, mgw_hdr_t: runtime/base/mem.h; mgw_kv_t: runtime/conf/path.h;
-- mgw_lslot_t (a request's slot in the worker's Lua state): runtime/lua/lua_int.h;
-- mgw_ffi_runtime_now (runtime/lua/ffi_runtime.c) is the loop clock that both
-- moongate.runtime and moongate.http read.
ffi.cdef [[
typedef struct mgw_req_s mgw_req_t;
typedef struct { const char *p; size_t n; } mgw_str_t;
typedef struct { mgw_str_t name, value; } mgw_kv_t;
typedef struct { mgw_str_t name, value; } mgw_hdr_t;
typedef struct { mgw_req_t *r; uint32_t serial; uint32_t next; } mgw_lslot_t;
int mgw_ffi_runtime_now(mgw_req_t *r, uint64_t *ms);
]]

local M = {}

M.constants = require "moongate.constants"

return M
