/*
 * Lua policies inside the runtime: the worker's LuaJIT state (lua.c), the hooks wired
 * into the request phases (hooks.c) and the FFI exports Lua calls back into
 * (ffi_request.c, ffi_runtime.c, ffi_http.c, ffi_throttle.c, ffi_ws.c). Nothing outside runtime/
 * includes this but tools/gen_constants.c, which exports its shared numbers to Lua.
 *
 * The division of work: C decides when a hook runs and what its outcome does to the
 * request (a gateway response, the next phase); lua/moongate/runtime.lua runs the hook
 * in a runner thread (lua.c) under the instruction budget, interprets its result with the same
 * code the busted kit uses (lua/moongate/hooks.lua), and hands the result back through
 * mgw_ffi_* setters that only store values. No FFI function answers or frees a request:
 * that happens in C after Lua has returned, so a request never disappears under a
 * running script.
 */
#ifndef MGW_LUA_INT_H
#define MGW_LUA_INT_H

#include "conf/modsec.h"
#include "conf/wafrate.h"
#include "gw/req_int.h"
#include "http/http1.h"
#include "http/proxy.h"
#include "net/conn.h"

/*
 * The numbers below are shared with the Lua modules (lua/moongate/): `make` generates
 * lua/moongate/constants.lua from them (tools/gen_constants.c lists what it exports), so the
 * Lua side never types one in.
 */

/* The hook kinds (constants.HOOK); CHECK_CERT is a revocation check (no request). */
enum {
    MGW_HOOK_WAF = 1,
    MGW_HOOK_ROUTE,
    MGW_HOOK_AUTHORIZE,
    MGW_HOOK_HANDLE,
    MGW_HOOK_LOG,
    MGW_HOOK_CHECK_CERT
};

/* What a hook call returns to C (constants.CODE). */
enum {
    MGW_LUA_OK = 0,           /* done: allowed, selected, answered */
    MGW_LUA_WAIT = 1,         /* the hook waits (HTTP call, request body) */
    MGW_LUA_ERROR = 2,        /* script error, bad result, budget: the phase's 500 */
    MGW_LUA_BLOCK = 3,        /* WAF: blocked */
    MGW_LUA_UNAUTHORIZED = 4, /* authorizer: 401 */
    MGW_LUA_DENY = 5,         /* authorizer: 403 */
    MGW_LUA_NOT_FOUND = 6,    /* route selection: no such route and no $default */
    MGW_LUA_GWRESP = 7,       /* a gateway response of the type given as aux
                                 (constants.GATEWAY_RESPONSE): a non-proxy http integration's
                                 backend failure (502, 504), a mapping template's 415 */
};

/* What a revocation check returns to C (constants.CERT; mgw_lua_check_cert). */
enum { MGW_CERT_ALLOW = 0, MGW_CERT_DENY = 1, MGW_CERT_ERROR = 2 };

/*
 * The fields of mgw_ffi_req_field, with the name lua/moongate/request.lua gives each
 * (constants.REQUEST_FIELDS): XX(ID, "name").
 */
#define MGW_REQ_FIELDS(XX)                                                                         \
    XX(METHOD, "method")                                                                           \
    XX(PATH, "path")                                                                               \
    XX(RAW_PATH, "raw_path")                                                                       \
    XX(ROUTE_PATH, "route_path")                                                                   \
    XX(QUERY, "query_string")                                                                      \
    XX(ROUTE_KEY, "route_key")                                                                     \
    XX(REQUEST_ID, "request_id")                                                                   \
    XX(SOURCE_IP, "source_ip")                                                                     \
    XX(STAGE, "stage")                                                                             \
    XX(API_ID, "api_id")                                                                           \
    XX(HOST, "host")                                                                               \
    XX(PROTOCOL, "protocol")                                                                       \
    XX(CONNECTION_ID, "connection_id")                                                             \
    XX(MESSAGE_TYPE, "message_type")                                                               \
    XX(API_TYPE, "api_type")

enum {
#define XX(id, _) MGW_FIELD_##id,
    MGW_REQ_FIELDS(XX)
#undef XX
};

/*
 * One throttle limit as lua/moongate/throttle.lua sees it (mgw_ffi_throttle_*); its
 * layout is exported to constants.LAYOUT, which a spec compares with the ffi.cdef.
 */
typedef struct {
    const char *policy; /* "account", "stage-shared", "stage", "route", "plan", "plan-route", or the
                           bucket key */
    double rate;
    uint64_t burst;
    uint64_t remaining;
    uint64_t reset_ms;       /* until the bucket is full again */
    uint64_t retry_after_ms; /* refused: until the next token */
} mgw_ffi_limit_t;

/* What Lua passes to mgw_ffi_http_start (lua/moongate/http.lua declares it again; its
 * layout is checked by spec/lua/base_spec.lua through constants.LAYOUT). */
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
    uint64_t max_body;   /* largest response body accepted */
    const char *ca_file; /* https: the CA bundle to verify against; NULL: the system store */
    size_t ca_file_len;
} mgw_ffi_http_params_t;

/* What Lua reads with mgw_ffi_http_result. */
typedef struct {
    int status;
    int nheaders;
    mgw_str_t body;
    const char *error; /* NULL when a response arrived */
} mgw_ffi_http_result_t;

/*
 * A request's slot in its worker's Lua state (lua.c). The first hook of a request takes
 * one; the request's end gives it back, in C only: Lua's per-request objects stay in the
 * slot's table until the next request that takes the slot replaces them. A request
 * object remembers its slot and serial and refuses to work once the serial moved on
 * (lua/moongate/request.lua). Slots live in blocks that never move, so Lua keeps their
 * addresses. Its layout is exported to constants.LAYOUT, which a spec compares with the
 * ffi.cdef of lua/moongate/base.lua.
 */
typedef struct {
    mgw_req_t *r;    /* the request in the slot; NULL once it ended */
    uint32_t serial; /* moves on when a request gives the slot back */
    uint32_t next;   /* the free list: the next free slot's number + 1 */
} mgw_lslot_t;

/* One managed rule set that ran for a request (ffi_waf.c), in a list in its pool. */
typedef struct mgw_wafm_run_s {
    int idx; /* into mgw_gen_t.waf_managed */
    const mgw_modsec_result_t *res;
    struct mgw_wafm_run_s *next;
} mgw_wafm_run_t;

/* What a waiting hook waits for. */
enum { MGW_WAIT_NONE, MGW_WAIT_HTTP, MGW_WAIT_BODY, MGW_WAIT_WS, MGW_WAIT_CLUSTER };

typedef struct mgw_lhttp_s mgw_lhttp_t;
typedef struct mgw_ws_call_s mgw_ws_call_t; /* ws/ws.h */

/* The Lua policy state of one request, in its pool. */
struct mgw_lreq_s {
    mgw_lslot_t *slot; /* taken by the first hook, given back by a pool cleanup */
    uint32_t slot_no;
    struct lua_State *runner; /* the Lua thread of a hook that waits (lua.c) */
    int runner_ref;
    int waiting; /* MGW_WAIT_* */
    uint64_t hook_start_ms;
    /* authorizer */
    const char *principal;
    mgw_kv_t *authz;
    int nauthz;
    int authz_status; /* 200, 401, 403, 500 */
    const char *authz_error;
    uint64_t authz_latency_ms;
    /* WAF */
    int waf_blocked, waf_done;
    const char *waf_rule, *waf_counted, *waf_error;
    uint64_t waf_latency_ms;
    /* the last managed rule that ran (ffi_waf.c): $context.waf.managed.* */
    mgw_modsec_result_t *wafm;
    /* every managed rule that ran, in order, for the WAF log's ruleGroupList */
    struct mgw_wafm_run_s *wafm_runs;
    /* the rate-based rules that matched, in order (ffi_waf.c): $context.waf.rateBased */
    struct mgw_waf_rate_match_s *wafr;
    int nwafr;
    /* the labels web ACL rules added (ffi_waf.c), pool strings, in the order added */
    const char **waf_labels;
    int nwaf_labels, cap_waf_labels;
    /* the custom block response of the terminating rule or default action, or NULL */
    const struct mgw_wafresp_s *waf_response;
    /* route selection */
    int route_done;
    /* Lua integration: the response Lua produced */
    int resp_status;
    mgw_hdr_t *resp_hdrs;
    int nresp_hdrs;
    mgw_str_t resp_body;
    /* log policy: a whole line, or $context.custom values */
    mgw_str_t log_line;
    int has_line;
    mgw_kv_t *custom;
    int ncustom;
    /* the Lua HTTP client call in flight, and the last one's result (ffi_http.c) */
    mgw_lhttp_t *http;
    struct mgw_lhttp_result_s *http_result;
    /* the @connections call in flight (ffi_ws.c), and the last one's outcome */
    mgw_ws_call_t *ws;
    int ws_status;
    /* a shared cache read (ffi_cluster.c): in flight, and its answer */
    int kv_wait, kv_found;
    mgw_str_t kv_val;
    mgw_str_t ws_info;
};

/* ---- lua.c: the worker's LuaJIT state ---- */

/* Creates the worker's state: lua/ and the runtime module loaded. NULL when that fails
 * (logged); hooks then fail with a 500. */
mgw_lua_t *mgw_lua_create(mgw_worker_t *w);
void mgw_lua_destroy(mgw_lua_t *L);
/* Worker thread, after mgw_lua_create: moongate_lua_memory_bytes{worker} says how much
 * memory w's state holds, set now and every second by a timer on w's loop that keeps no
 * loop alive. */
void mgw_lua_watch(mgw_lua_t *L, mgw_worker_t *w);
/* Worker thread, the loop has run dry: closes mgw_lua_watch's timer (the loop's next
 * run finishes it; mgw_lua_destroy comes after). */
void mgw_lua_unwatch(mgw_lua_t *L);
/* Loads the policies of g (g->lua_spec) into the state. Returns 0 or MGW_ECONFIG (logged). */
int mgw_lua_load_gen(mgw_lua_t *L, const mgw_gen_t *g);
/* Drops what mgw_lua_load_gen loaded for g. */
void mgw_lua_unload_gen(mgw_lua_t *L, const mgw_gen_t *g);

/*
 * Runs hook (MGW_HOOK_*) of use number use for r (in a runner thread, lua.c). Returns an
 * MGW_LUA_* code; *aux receives a second result (route selection: the route idx).
 */
int mgw_lua_call(mgw_req_t *r, int hook, int use, int *aux);
/* Resumes r's waiting hook; returns like mgw_lua_call. */
int mgw_lua_resume(mgw_req_t *r, int *aux);
/* Gives r's slot back (no Lua runs): its request object stops working, and its
 * per-request table is dropped when another request takes the slot, and a hook that
 * still waited is dropped now. */
void mgw_lua_release(mgw_req_t *r);
/*
 * Runs revocation check use of generation gen_id on a client certificate (a TLS
 * handshake, no request). Returns an MGW_CERT_* verdict; reason says why.
 */
int mgw_lua_check_cert(mgw_lua_t *ml, int gen_id, int use, const mgw_client_cert_t *cert,
                       const char *fingerprint, char *reason, size_t n);

/* ---- revocation.c: the mTLS revocation hook with its per-worker cache ---- */

/* The mgw_tls_check_cb of client connections (ud: the mgw_conn_t), registered with
 * mgw_conn_set_cert_check at startup. */
int mgw__revocation_check(void *ud, void *site_data, const mgw_client_cert_t *cert,
                          const char *fingerprint, char *reason, size_t n);

/* ---- hooks.c: the hook kinds in the request phases ---- */

/* Fills in the request core's entries this layer implements (gw/gw.h): the policy hooks,
 * the lua integration type and the lua authorizer type. Called once at start-up. */
void mgw_lua_register(void);

/* The request's Lua state, created on first use. */
mgw_lreq_t *mgw__lreq(mgw_req_t *r);

int mgw__hooks_waf(mgw_req_t *r);
/* The labels the web ACL's rules added to r (n of them; NULL when none), for the WAF
 * log; they live as long as r. */
const char *const *mgw__waf_labels(mgw_req_t *r, int *n);
/* Route selection: returns MGW_PHASE_NEXT with r->route set (or NULL: the route keys
 * decide), MGW_PHASE_STOP or MGW_PHASE_WAIT. */
int mgw__hooks_select_route(mgw_req_t *r);
int mgw__hooks_authorize(mgw_req_t *r);
/* The Lua integration; returns MGW_PHASE_STOP or MGW_PHASE_WAIT. */
int mgw__hooks_handle(mgw_req_t *r);
/* Runs the stage's log policy; returns 1 when it wrote the whole line into line. */
int mgw__hooks_log(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *line);
/* $context values that hooks produce (authorizer.*, waf.*, custom.*). */
int mgw__hooks_lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out);
/* The request body's end came while hooks run (its bytes are in r->kept_body). */
void mgw__hooks_body_done(mgw_req_t *r);
/* 1 when the request body has fully arrived (bodyless requests included). */
int mgw__hooks_body_complete(const mgw_req_t *r);
/* The shared cache's mailbox kind (ffi_cluster.c). */
/* A waiting hook's event happened (HTTP response, body): resume it. */
void mgw__hooks_wakeup(mgw_req_t *r);

/* ---- waflog.c ---- */

/* The stage's WAF log line of r (gw/gw.h mgw_gw_hooks_t.waf_log). */
int mgw__waflog_line(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *line);

/* Tells the worker's Lua state that connection id ended: the values kept for it go. */
void mgw__lua_conn_end(mgw_lua_t *ml, const char *id);

/* ---- ffi_waf.c ---- */

/* One part of the key a rate-based rule counted a request by (AWS WAF log:
 * rateBasedRuleList[].customValues[]). */
typedef struct {
    const char *key;  /* the part's kind as AWS logs it: "HEADER", "COOKIE", "QUERY_ARGUMENT",
                         "QUERY_STRING", "HTTP_METHOD", "URI_PATH", "IP", "FORWARDED_IP" */
    const char *name; /* the header, cookie or query argument; NULL for the other kinds */
    mgw_str_t value;  /* as the request had it (an address in its canonical form) */
} mgw_waf_rate_value_t;

/* A rate-based rule that matched a request: what the WAF log's rateBasedRuleList says. */
typedef struct mgw_waf_rate_match_s {
    const char *rule;      /* rateBasedRuleName */
    uint64_t limit;        /* maxRateAllowed */
    int window_s;          /* evaluationWindowSec */
    const char *limit_key; /* "IP", "FORWARDEDIP", "CONSTANT" or "CUSTOMKEYS" */
    /* the key's parts: one for IP and FORWARDEDIP (the log's limitValue), none for
     * CONSTANT, one per custom key for CUSTOMKEYS (customValues) */
    const mgw_waf_rate_value_t *values;
    int nvalues;
    uint64_t count; /* the key's requests in the window, this one included (0: fallback) */
    int fallback;   /* matched by forwarded_ip.fallback_behavior = "match" (the header held
                       no valid address), not by the key's rate */
} mgw_waf_rate_match_t;

/* The rate-based rules that matched r, in the order they ran (block and count actions
 * alike), in r's pool; *n receives how many (0: NULL). */
const mgw_waf_rate_match_t *mgw__waf_rate_matches(mgw_req_t *r, int *n);

/* ---- ffi_http.c ---- */

/* Abandons r's HTTP call, if any (the request ends). */
void mgw__lhttp_cancel(mgw_req_t *r);

/* ---- ffi_ws.c ---- */

/* Registers the end of WebSocket connections with ws/ (mgw_ws_set_conn_end), at startup. */
void mgw__lws_register(void);

#endif
