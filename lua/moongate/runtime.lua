-- moongate.runtime: the worker side of Lua policies, entered only from runtime/lua/lua.c.
--
--   load_gen(id, spec)       compiles the policies of a configuration generation
--   unload_gen(id)           drops them once the generation's last request has ended
--   call(s, hook, use, gen, runner)  runs a hook for the request in slot s (an
--                            mgw_lslot_t's address, a number) in runner, the thread
--                            C resumed
--   yielded(s)               reports a hook that yielded by itself (C dropped it)
--   conn_end(id)             drops what was kept for a WebSocket connection that ended
--
-- A request's slot (runtime/lua/lua_int.h) is its place in this state: C takes one at
-- the request's first hook and gives it back when the request ends, without calling
-- Lua. Its serial then moves on, so the request object stops working, and what the
-- request left here (its state table) is replaced when the next request takes the slot.
--
-- call and resume return a code (constants.CODE: MGW_LUA_* in runtime/lua/lua_int.h)
-- and an auxiliary integer. Results travel back to C through the mgw_ffi_runtime_*
-- setters (runtime/lua/ffi_runtime.c), which only store; C acts on them after this
-- module has returned.
local ffi = require "ffi"
local base = require "moongate.base"
local policy = require "moongate.policy"
local cjson_safe = require "cjson.safe"
local request = require "moongate.request"
local hooks = require "moongate.hooks"
local connections = require "moongate.connections"
local mapping = require "moongate.mapping"
local waf = require "moongate.waf"
local metrics = require "moongate.metrics"

ffi.cdef [[
int mgw_ffi_runtime_authorized(mgw_req_t *r, const char *principal, size_t pn,
                               const mgw_kv_t *ctx, int n, const char *key, size_t kn);
int mgw_ffi_runtime_waf(mgw_req_t *r, const char *rule, size_t rn, const char *counted,
                        size_t cn);
int mgw_ffi_runtime_response(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int n,
                             const char *body, size_t bn);
int mgw_ffi_runtime_log_line(mgw_req_t *r, const char *line, size_t n);
int mgw_ffi_runtime_custom(mgw_req_t *r, const mgw_kv_t *kv, int n);
int mgw_ffi_runtime_error(mgw_req_t *r, int hook, const char *msg, size_t n);
int mgw_ffi_runtime_log(mgw_req_t *r, int level, const char *msg, size_t n);
int mgw_ffi_runtime_is_text(const char *p, size_t n);
int mgw_ffi_runtime_integ_status(mgw_req_t *r, int status);
int mgw_ffi_runtime_failed(mgw_req_t *r, int hook, int budget, const char *policy, size_t n,
                           uint32_t *handle);
int mgw_ffi_cluster_get(mgw_req_t *r, const char *ns, size_t nsn, const char *key, size_t kn,
                        const char **err);
int mgw_ffi_cluster_result(mgw_req_t *r, mgw_str_t *val);
int mgw_ffi_cluster_set(const char *ns, size_t nsn, const char *key, size_t kn, const char *val,
                        size_t vn, uint64_t ttl_ms);
]]

local C = ffi.C

-- Event bodies are checked in C (see hooks.set_text_check).
hooks.set_text_check(function(s)
  return C.mgw_ffi_runtime_is_text(s, #s) == 1
end)
local ffi_new, ffi_cast, ffi_string = ffi.new, ffi.cast, ffi.string
local type, pairs, ipairs, next, tostring, tonumber =
  type, pairs, ipairs, next, tostring, tonumber
local co_yield = coroutine.yield
local format, concat, sort, find = string.format, table.concat, table.sort, string.find
local huge = math.huge

local metrics_count = metrics.count

local M = {}

-- Shared with C (moongate.constants, generated from the runtime headers).
local K = base.constants
local HOOK, CODE, CERT = K.HOOK, K.CODE, K.CERT
local OK, WAIT, ERROR, BLOCK, UNAUTHORIZED, DENY, NOT_FOUND =
  CODE.OK, CODE.WAIT, CODE.ERROR, CODE.BLOCK, CODE.UNAUTHORIZED, CODE.DENY, CODE.NOT_FOUND
local LOG_ERROR, LOG_WARN = K.LOG.ERROR, K.LOG.WARN

-- Deadline of a hook call (its HTTP calls time out by then) when the use sets none.
M.default_deadline_ms = 10000
-- Entries one authorizer's cache holds per worker before it is swept.
M.cache_max_entries = 10000

local worker_id = 0
local gens = {}   -- generation id -> { uses = {...}, budget = n }
local states = {} -- slot address -> { slot, serial, req, r, co, use, hook, left, ... }
local caches = {} -- authorizer fingerprint -> { entries = {}, n = 0 }

local u64 = ffi_new("uint64_t[1]")

local function now_ms(r)
  C.mgw_ffi_runtime_now(r, u64)
  return tonumber(u64[0])
end

local function log(r, level, msg)
  C.mgw_ffi_runtime_log(r, level, msg, #msg)
end

-- With MOONGATE_JIT_AUDIT set, every trace abort for code the JIT cannot compile
-- ("NYI: ...") and every place LuaJIT stops trying to compile after repeated aborts
-- ("blacklisted ...") in policies or lua/moongate, and every loop of lua/moongate that
-- aborts a hook's trace (what leads to a blacklisting), is logged once per place, as a warning: how to find what keeps a hot
-- path out of compiled code in the real gateway.
local function jit_audit()
  local vmdef = require "jit.vmdef"
  local jutil = require "jit.util"
  local seen = {}
  jit.attach(function(what, _, func, pc, otr, oex)
    if what ~= "abort" then
      return
    end
    local reason = vmdef.traceerr[otr] or tostring(otr)
    if type(oex) == "number" and reason:find("%%d") then
      reason = reason:format(oex)
    elseif oex ~= nil and reason:find("%%s") then
      reason = reason:format(type(oex) == "number" and (vmdef.ffnames[oex] or oex) or tostring(oex))
    end
    local info = jutil.funcinfo(func, pc)
    -- a loop of the runtime's own code inside a hook's trace: the hook's entry is
    -- retried until LuaJIT blacklists it, and the whole path then runs interpreted
    local own_loop = reason:find("^inner loop") and tostring(info.source):find("moongate/%a+%.lua$")
    if not (reason:find("^NYI") or reason:find("^blacklisted") or own_loop)
      or reason == "NYI: return to lower frame" then
      return
    end
    local where = tostring(info.source):gsub("^@", "") .. ":" .. tostring(info.currentline)
    if not seen[where .. reason] then
      seen[where .. reason] = true
      log(nil, LOG_WARN, "trace abort at " .. where .. ": " .. reason)
    end
  end, "trace")
end

function M.init(id)
  worker_id = id
  if os.getenv("MOONGATE_JIT_AUDIT") then
    jit_audit()
  end
end

---------------------------------------------------------------------------
-- Generations
---------------------------------------------------------------------------

local function fingerprint(use, source)
  return concat({ use.api or "", use.name or "", policy.serialize(use.conf) or "",
    policy.serialize(use.identity_sources or {}), use.kind or "", tostring(use.ttl),
    use.token_pattern or "", use.payload_format_version or "", source }, "\0")
end

-- Loads a generation's spec (see moongate.config: lua_spec). Returns nil, or the
-- text of what failed (those uses answer 500 and log why).
function M.load_gen(id, text)
  local spec, err = policy.deserialize(text)
  if type(spec) ~= "table" then
    return "invalid policy spec: " .. tostring(err)
  end
  -- Modules the previous generation's policies required are loaded afresh.
  policy.install_searcher(spec.dirs or {})
  policy.forget_required()
  local failures = {}
  local mods = {}
  for i, p in ipairs(spec.policies) do
    local mod, lerr = policy.load_source(p.source, p.name)
    mods[i] = mod or { broken = lerr }
    if not mod then
      failures[#failures + 1] = lerr
    end
  end
  local function bind(u)
    u.policy_name = spec.policies[u.policy].name -- the metrics' policy label
    local mod = mods[u.policy]
    if mod.broken then
      u.broken = mod.broken
      return
    end
    u.mod = mod
    local conf, perr = policy.prepare(mod, u.conf)
    if conf == nil then
      u.broken = spec.policies[u.policy].name .. ": prepare: " .. tostring(perr)
      failures[#failures + 1] = u.broken
    else
      u.conf = conf
    end
  end
  for _, use in ipairs(spec.uses) do
    if use.mapping then
      -- a non-proxy http integration: its transforms are the policies
      if use.request_transform then
        bind(use.request_transform)
        use.broken = use.request_transform.broken
      end
      for _, resp in ipairs(use.responses) do
        if resp.transform then
          bind(resp.transform)
          use.broken = use.broken or resp.transform.broken
        end
      end
      local perr = mapping.prepare(use)
      if perr then
        use.broken = perr
        failures[#failures + 1] = use.where .. ": " .. perr
      end
    elseif use.hook == "waf" then
      for _, rule in ipairs(use.rules) do
        local ckind
        for key, mod in pairs(waf.kinds) do
          if rule[key] then
            ckind = mod
            break
          end
        end
        if ckind then -- evaluated in C (moongate.waf)
          rule.mod, rule.conf = ckind, rule
        else
          bind(rule)
        end
        if rule.broken then
          use.broken = rule.broken
        end
      end
      metrics.prepare_waf(use)
    else
      local raw_conf = use.conf
      bind(use)
      if use.hook == "authorize" then
        metrics.prepare_authorizer(use)
        use.fingerprint = fingerprint({ api = use.api, name = use.name, conf = raw_conf,
          identity_sources = use.identity_sources, kind = use.kind, ttl = use.ttl,
          token_pattern = use.token_pattern, payload_format_version = use.payload_format_version },
          spec.policies[use.policy].source)
      end
    end
  end
  gens[id] = { uses = spec.uses, budget = spec.budget or policy.default_budget }
  if #failures > 0 then
    return "policies that failed to load (their uses answer 500): " .. concat(failures, "; ")
  end
  return nil
end

function M.unload_gen(id)
  gens[id] = nil
  -- Authorizer caches no loaded generation uses any more are dropped.
  local used = {}
  for _, g in pairs(gens) do
    for _, use in ipairs(g.uses) do
      if use.fingerprint then
        used[use.fingerprint] = true
      end
    end
  end
  for fp in pairs(caches) do
    if not used[fp] then
      caches[fp] = nil
    end
  end
end

---------------------------------------------------------------------------
-- Running hooks
---------------------------------------------------------------------------

local function where(use)
  return use.where or "policy"
end

local handle_buf = ffi_new("uint32_t[1]")
local BUDGET_EXCEEDED = policy.BUDGET_EXCEEDED

-- Counts a failed hook call of the policy of owner (a use, a web ACL rule or a
-- transform: the table that names the policy; it keeps the series' handles, so that
-- only its first failure of each kind looks the series up): in
-- moongate_lua_budget_stops_total when the budget stopped it, else in
-- moongate_lua_hook_errors_total.
local function count_failure(r, hook, owner, msg)
  local budget = find(msg, BUDGET_EXCEEDED, 1, true) ~= nil
  local key = budget and "budget_series" or "error_series"
  local name = owner.policy_name or where(owner)
  handle_buf[0] = owner[key] or 0
  C.mgw_ffi_runtime_failed(r, hook, budget and 1 or 0, name, #name, handle_buf)
  owner[key] = tonumber(handle_buf[0])
end

-- Logs a hook failure with the policy's file, line and traceback, keeps the message
-- for $context (waf.error, authorizer.error, integrationErrorMessage) and counts it
-- for the policy of owner (default: use).
local function report(st, hook, use, msg, tb, owner)
  local r = st.slot.r
  local text = format("%s: %s", where(use), msg)
  if tb and tb ~= "" then
    text = text .. "; traceback: " .. tb
  end
  log(r, LOG_ERROR, text)
  C.mgw_ffi_runtime_error(r, hook, msg, #msg)
  count_failure(r, hook, owner or use, msg)
end

-- The budget of the hook running now (set before every resume).
local budget_now = policy.default_budget

-- Runs a hook function under the budget of the hook's generation.
local function call(fn, a, b, c)
  return hooks.call(budget_now, fn, a, b, c)
end

local kv_cap = 16
local kv_buf = ffi_new("mgw_kv_t[?]", kv_cap)

-- A Lua table of string -> string as an mgw_kv_t array (kept alive by keep).
local function kv_array(t, keep)
  local names = {}
  for k in pairs(t) do
    names[#names + 1] = k
  end
  sort(names)
  local n = #names
  if n > kv_cap then
    kv_cap = n
    kv_buf = ffi_new("mgw_kv_t[?]", kv_cap)
  end
  for i, k in ipairs(names) do
    local v = t[k]
    keep[#keep + 1] = k
    keep[#keep + 1] = v
    kv_buf[i - 1].name.p, kv_buf[i - 1].name.n = k, #k
    kv_buf[i - 1].value.p, kv_buf[i - 1].value.n = v, #v
  end
  return kv_buf, n
end

-- The authorizer allowed the request: C keeps the principal, the context (as
-- $context.authorizer.KEY, and what req.authorizer reads) and the usage identifier key.
local function authorized(st, context, p, k)
  local ctx, n, keep = nil, 0, nil
  if next(context) ~= nil then
    keep = {}
    ctx, n = kv_array(context, keep)
  end
  C.mgw_ffi_runtime_authorized(st.slot.r, p, p and #p or 0, ctx, n, k, k and #k or 0)
  local id = st.req.connection_id
  if id then
    -- a WebSocket $connect: every later event of the connection shows the result as
    -- requestContext.authorizer ({ principalId, context keys... }, as AWS does)
    local a = {}
    for key, v in pairs(context) do
      a[key] = v
    end
    a.principalId = p
    connections.keep(st.slot.r, id, "authorizer", a)
  end
end

local function cache_for(use)
  local c = caches[use.fingerprint]
  if c == nil then
    c = { entries = {}, n = 0 }
    caches[use.fingerprint] = c
  end
  return c
end

local function cache_put(c, key, res, expires, now)
  if c.n >= M.cache_max_entries then
    for k, e in pairs(c.entries) do
      if e.expires <= now then
        c.entries[k] = nil
        c.n = c.n - 1
      end
    end
    if c.n >= M.cache_max_entries then
      c.entries, c.n = {}, 0
    end
  end
  if c.entries[key] == nil then
    c.n = c.n + 1
  end
  c.entries[key] = { result = res, expires = expires }
end

-- The shared cache (use.shared_cache, README "Running a cluster"): decisions in Redis,
-- keyed by a digest of the authorizer's fingerprint and of the identity values, as JSON.
-- A read waits for Redis at most cluster.sync_interval_ms (then it is a miss).
local shared_val = ffi_new("mgw_str_t[1]")
local shared_err = ffi_new("const char *[1]")

local function shared_get(st, use, key, expires)
  local r = st.slot.r
  local fp = use.fingerprint
  local rc = C.mgw_ffi_cluster_get(r, fp, #fp, key, #key, shared_err)
  if rc == 1 then
    request.wait(1)
  end
  if rc < 0 or C.mgw_ffi_cluster_result(r, shared_val) ~= 1 then
    return nil
  end
  local res = cjson_safe.decode(ffi_string(shared_val[0].p, shared_val[0].n))
  if type(res) ~= "table" then
    return nil
  end
  cache_put(cache_for(use), key, res, expires, now_ms(r))
  return { result = res, expires = expires }
end

local function shared_put(use, key, res, ttl)
  local text = cjson_safe.encode(res)
  if text then
    local fp = use.fingerprint
    C.mgw_ffi_cluster_set(fp, #fp, key, #key, text, #text, ttl * 1000)
  end
end

local RUN = {}

RUN[HOOK.WAF] = function(st, use)
  local action, rule, counted, err = hooks.waf_run(use, st.req, call, true)
  local name = rule and rule.name
  local list = counted and concat(counted, ",")
  local r = st.slot.r
  C.mgw_ffi_runtime_waf(r, name, name and #name or 0, list, list and #list or 0)
  -- GET /metrics, from the facts of the WAF log: the terminating action, the rule that
  -- made it (the default action's when none) and the count rules that matched
  local match = action == "ERROR" and 0 or rule and rule.stat or use.stat_default
  metrics_count(r, use.stat[action], match)
  if counted then
    local by_name = use.stat_counted
    for i = 1, #counted do
      metrics_count(r, by_name[counted[i]] or 0, 0)
    end
  end
  if action == "BLOCK" then
    local resp
    if rule then
      resp = rule.response
    else
      resp = use.response
    end
    if resp then
      waf.set_response(st.slot.r, resp)
    end
  end
  if action == "ERROR" then
    report(st, HOOK.WAF, use, format("rule %q: %s", name, err.message), err.traceback, rule)
    return ERROR
  end
  return action == "BLOCK" and BLOCK or OK
end

RUN[HOOK.ROUTE] = function(st, use)
  local d = hooks.select_route(use, st.req, call)
  if d.error then
    report(st, HOOK.ROUTE, use, d.error, d.traceback)
    return ERROR
  end
  if d.declined then
    return OK, -1
  end
  if d.route_key == nil then
    return NOT_FOUND
  end
  return OK, use.routes[d.route_key]
end

RUN[HOOK.AUTHORIZE] = function(st, use)
  local req, r = st.req, st.slot.r
  local auth, key = hooks.authorizer_input(use, req)
  if not auth then
    metrics_count(r, use.stat.unauthorized, 0)
    C.mgw_ffi_runtime_error(r, HOOK.AUTHORIZE, key, #key)
    return UNAUTHORIZED
  end
  local ttl = use.ttl or 0
  local c = ttl > 0 and cache_for(use)
  local now = c and now_ms(r)
  local hit = c and c.entries[key]
  local lookup = 0 -- the cache's series: hit, miss, or none without a cache
  if not (hit and hit.expires > now) and c and use.shared_cache then
    hit = shared_get(st, use, key, now + ttl * 1000)
  end
  -- the checked result, kept or from the policy (no decision table: hooks.run_authorizer)
  local simple, what, ctx, principal, ukey
  if hit and hit.expires > now then
    simple, what, ctx, principal, ukey = hooks.result_values(hit.result)
    lookup = use.stat_hit
  else
    lookup = c and use.stat_miss or 0
    simple, what, ctx, principal, ukey = hooks.run_authorizer(use, req, call, auth)
    if simple == nil then -- what: "unauthorized" or "error"; ctx, principal: why, traceback
      metrics_count(r, use.stat[what] or 0, lookup)
      if what == "unauthorized" then
        C.mgw_ffi_runtime_error(r, HOOK.AUTHORIZE, ctx, #ctx)
        return UNAUTHORIZED
      end
      report(st, HOOK.AUTHORIZE, use, ctx, principal)
      return ERROR
    end
    -- Allow and deny results are remembered; 401 and failures are not.
    if c then
      local res = hooks.authorizer_result(simple, what, ctx, principal, ukey)
      cache_put(c, key, res, now_ms(r) + ttl * 1000, now)
      if use.shared_cache then
        shared_put(use, key, res, ttl)
      end
    end
  end
  local outcome, explicit_deny = hooks.authorizer_outcome(simple, what, auth)
  metrics_count(r, use.stat[outcome] or 0, lookup)
  if outcome == "allow" then
    authorized(st, ctx, principal, ukey)
    return OK
  end
  return DENY, explicit_deny and 1 or 0
end

local hdr_cap = 16
local hdr_buf = ffi_new("mgw_hdr_t[?]", hdr_cap)


-- What a failure of a non-proxy http integration at where counts for: the transform
-- there (its policy), else a table of the use's kept for where (a template: the
-- configuration path names it).
local function mapping_owner(use, where_)
  local t = use.request_transform
  if t and t.where == where_ then
    return t
  end
  for _, resp in ipairs(use.responses or {}) do
    if resp.transform and resp.transform.where == where_ then
      return resp.transform
    end
  end
  local kept = use.failed_at or {}
  use.failed_at = kept
  local o = kept[where_] or { where = where_ }
  kept[where_] = o
  return o
end

-- A non-proxy http integration (moongate.mapping): a backend failure is the proxy's 502
-- or 504, anything else (a transform, no integration response) a 500.
local function run_mapping(st, use)
  local r = st.slot.r
  local ok, resp = pcall(mapping.run, use, st.req, call)
  if not ok then
    resp = { error = tostring(resp), failure = "config" }
  end
  if resp.gateway then -- a gateway response (a request template's 415)
    return nil, CODE.GWRESP, K.GATEWAY_RESPONSE[resp.gateway]
  end
  if resp.backend_status then
    C.mgw_ffi_runtime_integ_status(r, resp.backend_status)
  elseif resp.failure == "failure" or resp.failure == "timeout" then
    local msg = resp.error
    log(r, K.LOG.INFO, format("%s: %s", where(use), msg))
    C.mgw_ffi_runtime_error(r, HOOK.HANDLE, msg, #msg)
    return nil, CODE.GWRESP,
      K.GATEWAY_RESPONSE[resp.failure == "timeout" and "INTEGRATION_TIMEOUT" or "INTEGRATION_FAILURE"]
  end
  if resp.error and resp.where then
    report(st, HOOK.HANDLE, { where = resp.where }, resp.error, resp.traceback,
      mapping_owner(use, resp.where))
    return nil, ERROR
  end
  return resp
end

RUN[HOOK.HANDLE] = function(st, use)
  local resp, code
  if use.mapping then
    local aux
    resp, code, aux = run_mapping(st, use)
    if code then
      return code, aux
    end
  else
    resp = hooks.handle(use, st.req, call)
  end
  if resp.error then
    report(st, HOOK.HANDLE, use, resp.error, resp.traceback)
    return ERROR, resp.status -- 500, or a REST API's 502
  end
  local n = #resp.headers
  if n > hdr_cap then
    hdr_cap = n
    hdr_buf = ffi_new("mgw_hdr_t[?]", hdr_cap)
  end
  for i, h in ipairs(resp.headers) do
    hdr_buf[i - 1].name.p, hdr_buf[i - 1].name.n = h[1], #h[1]
    hdr_buf[i - 1].value.p, hdr_buf[i - 1].value.n = h[2], #h[2]
  end
  C.mgw_ffi_runtime_response(st.slot.r, resp.status, hdr_buf, n, resp.body, #resp.body)
  if resp.connection_context then -- a WebSocket $connect's values for later events
    connections.keep(st.slot.r, st.req.connection_id, "context", resp.connection_context)
  end
  return OK
end

RUN[HOOK.LOG] = function(st, use)
  local d = hooks.log(use, st.req, call)
  local r = st.slot.r
  if d.error then
    report(st, HOOK.LOG, use, d.error, d.traceback)
    return ERROR
  end
  if d.line then
    C.mgw_ffi_runtime_log_line(r, d.line, #d.line)
  elseif d.custom then
    local keep = {}
    local kv, n = kv_array(d.custom, keep)
    C.mgw_ffi_runtime_custom(r, kv, n)
  end
  return OK
end

-- Hooks run in runner threads (runtime/lua/lua.c): C resumes a runner with M.call, the
-- hook runs in it directly, and a wait (moongate.http, req:body()) yields M.WAIT back
-- to C, which resumes the same runner when the awaited event happened. A hook that does
-- not wait costs no coroutine of its own: a runner that finished runs the next hook.
M.WAIT = request.WAIT

-- The wait itself (request.wait): the budget left and the hook running are put aside
-- while other requests' hooks run, and back when C resumes this one.
request.set_waiter(function(st)
  local left = policy.set_budget(huge)
  co_yield(M.WAIT)
  policy.set_budget(left)
  budget_now, request.current_state = st.budget, st
end)

-- The state of the request in the slot at address s, made afresh for a new request.
-- The request pointer is read from the slot where it is used (st.slot.r), not kept:
-- in compiled code the JIT then passes it to C without boxing it.
local function state(s)
  local st = states[s]
  if st == nil then
    st = { slot = ffi_cast("mgw_lslot_t *", s), kept = {} }
    states[s] = st
  end
  local slot = st.slot
  local serial = slot.serial
  if st.serial ~= serial then
    st.serial, st.req = serial, request.from_slot(slot, st.kept)
  end
  return st
end

-- Runs hook (constants.HOOK) of use use_id of generation gen_id for the request in
-- slot s; returns its code and auxiliary integer.
function M.call(s, hook, use_id, gen_id, runner)
  local g = gens[gen_id]
  local st = state(s)
  local use = g and g.uses[use_id]
  if use == nil then
    log(st.slot.r, LOG_ERROR, format("no Lua policy use %d in generation %d", use_id, gen_id))
    return ERROR, 0
  end
  st.use, st.hook, st.budget, st.deadline = use, hook, g.budget, false
  st.timeout_ms = use.timeout_ms or M.default_deadline_ms
  if use.broken then
    report(st, hook, use, "the policy failed to load: " .. use.broken)
    return ERROR, 0
  end
  budget_now = g.budget
  -- Log hooks run as the request ends: they may not wait.
  st.co = hook ~= HOOK.LOG and runner or nil
  request.current_state = st
  local code, aux = RUN[hook](st, use)
  request.current_state = nil
  return code, aux or 0
end

-- C found that the hook of the request in slot s yielded by itself (not a wait).
function M.yielded(s)
  policy.set_budget(huge) -- the dropped hook's budget was left running
  request.current_state = nil
  local st = states[s]
  if st and st.use then
    report(st, st.hook, st.use, "the policy yielded (only moongate.http and req:body() may wait)")
  end
end

-- A mutual-TLS revocation check (TLS handshake, no request): check(cert, conf) under
-- the instruction budget; it may not wait. Returns CERT.ALLOW, CERT.DENY or
-- CERT.ERROR, and the reason.
function M.check_cert(use_id, gen_id, cert)
  local g = gens[gen_id]
  local use = g and g.uses[use_id]
  if use == nil then
    return CERT.ERROR, format("no revocation check %d in generation %d", use_id, gen_id)
  end
  if use.broken then
    return CERT.ERROR, where(use) .. ": the policy failed to load: " .. use.broken
  end
  local d = hooks.check_cert(use, cert, function(fn, ...)
    return hooks.call(g.budget, fn, ...)
  end)
  if d.outcome == "allow" then
    return CERT.ALLOW, ""
  elseif d.outcome == "deny" then
    return CERT.DENY, d.reason
  end
  count_failure(nil, HOOK.CHECK_CERT, use, d.error)
  return CERT.ERROR, where(use) .. ": " .. d.error
end

-- WebSocket connection id ended (runtime/lua/lua.c, told by ws/): what was kept for it
-- goes.
function M.conn_end(id)
  connections.forget(id)
end

-- For specs and diagnostics: live counts the requests in Lua now.
function M.stats()
  local n = 0
  for _, st in pairs(states) do
    if st.slot.r ~= nil then
      n = n + 1
    end
  end
  local g = 0
  for _ in pairs(gens) do
    g = g + 1
  end
  return { live = n, generations = g, worker = worker_id }
end

return M
