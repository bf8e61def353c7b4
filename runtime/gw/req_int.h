/*
 * The request (gw/request.c) and what it runs on: the worker (whose functions are
 * net/worker.c's) and what the request core knows of the connection it arrived on (the
 * connection itself is net/conn.h's, opaque here). Protocol-free: responses go out
 * through the request's writer (gw/writer.h), integrations and policies are reached
 * through gw/gw.h's tables. Nothing outside runtime/ includes this.
 */
#ifndef MGW_REQ_INT_H
#define MGW_REQ_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "base/deadline.h"
#include "base/pool.h"
#include "base/rbuf.h"
#include "base/rcache.h"
#include "base/tls.h"
#include "conf/gen.h"
#include "conf/gwresp.h"
#include "gw/accesslog.h"
#include "gw/gw.h"
#include "gw/wgen.h"
#include "gw/writer.h"

typedef struct mgw_worker_s mgw_worker_t;
typedef struct mgw_conn_s mgw_conn_t;
typedef struct mgw_req_s mgw_req_t;
typedef struct mgw_proxy_s mgw_proxy_t;
typedef struct mgw_hc_pool_s mgw_hc_pool_t; /* http/client.h */
typedef struct mgw_lua_s mgw_lua_t;         /* lua_int.h */
typedef struct mgw_lreq_s mgw_lreq_t;       /* lua_int.h */
typedef struct mgw_mailbox_s mgw_mailbox_t; /* net/mailbox.h */
typedef struct mgw_otlp_s mgw_otlp_t;       /* http/otlp.c */
typedef struct mgw_trace_s mgw_trace_t;     /* below */

/* A worker thread: its loop, its listeners and client connections. The main thread has
 * one too (id 0, net/worker.c), whose loop is the main loop and whose client connections
 * are the management listener's (ctl/manage.c). */
struct mgw_worker_s {
    uv_loop_t loop;
    int id;
    mgw_gen_t *gen;   /* the current generation: wgen->gen */
    mgw_wgen_t *wgen; /* what new requests use (ctl/reload.c) */
    mgw_lua_t *lua;   /* the worker's LuaJIT state (lua.c) */
    uv_thread_t thread;
    mgw_mailbox_t *mailbox; /* how other threads reach the worker (net/mailbox.h) */
    uv_tcp_t *listeners;
    int nlisteners;
    mgw_conn_t *conns; /* every open client connection */
    /* how many: written by the worker only (relaxed stores), read by the main thread's
     * metrics scrape (mgw_worker_open_connections) */
    uint64_t nconns;
    mgw_hc_pool_t *hc; /* the HTTP client's connection pools (http/proxy.c) */
    uv_timer_t shutdown_timer;
    uv_check_t accept_check; /* a new batch of accepts per loop iteration */
    int accepts;             /* connections accepted in this iteration */
    int shutting_down;
    uint64_t rng[2];
    char date[40]; /* the Date header's value, cached per second (mgw__date) */
    time_t date_sec;
    mgw_buf_t log_line; /* access-log lines are built here, one after the other */
    mgw_otlp_t *otlp;   /* span export (http/otlp.c), NULL until a span is queued */
    int startup_error;
};

/*
 * What the request core knows of the connection a request arrived on: the protocol
 * handler that creates the request fills it in from the connection (net/conn.h), whose
 * strings it points at (a connection outlives its requests).
 */
typedef struct {
    mgw_worker_t *w;                      /* the worker the connection belongs to */
    int listen_idx;                       /* its listener, in every generation's listen[] */
    const char *peer;                     /* the client's address */
    const char *tls_host;                 /* the domain its TLS handshake chose, or NULL */
    const mgw_client_cert_t *client_cert; /* the verified client certificate, or NULL */
    int tls;                              /* the connection is TLS */
    mgw_wgen_t *wgen; /* the generation to run on; NULL: the worker's current one */
} mgw_req_from_t;

struct mgw_req_s {
    mgw_pool_t *pool;
    mgw_conn_t *c;       /* the connection it arrived on (net/conn.h); NULL once a request that
                          * outlives it (a WebSocket $disconnect) is detached from it */
    mgw_req_from_t from; /* what the core knows of it */
    const mgw_writer_ops_t *wr; /* how the response reaches the client */
    void *proto_data;           /* the protocol's, for wr (a WebSocket event's connection) */
    mgw_gen_t *gen;             /* wgen->gen: the generation the request started with */
    mgw_wgen_t *wgen;           /* holds gen and its access log until the request ends */
    mgw_lreq_t *lua;            /* Lua policy state (lua/hooks.c), NULL until a hook runs */
    void *authz;                /* the state of the route's authorizer, if its type keeps
                                 * one (auth/: a JWT authorizer's), or NULL */
    /* request head; strings point into head (copied from the read buffers) */
    char *head;
    size_t head_len, head_cap;
    int hstate; /* 0 start, 1 in a field, 2 in a value */
    /* counted as their names complete, for the head's checks (http/server.c) */
    int nhost, nte; /* Host and Transfer-Encoding headers */
    int te_header;  /* index of the last Transfer-Encoding header */
    mgw_str_t target, method;
    int method_idx;
    int major, minor;
    mgw_hdr_t *headers;
    int nheaders, cap_headers;
    int has_length, chunked, keepalive;
    uint64_t content_length, body_received;
    /* the whole body, known before the phases run (a WebSocket message), or NULL: it is
     * what policies read and what integrations get (mgw__req_forward_kept_body) */
    mgw_str_t body_mem;
    /* body bytes that arrived before anything took them (while phases ran or waited: a
     * policy hook, a JWT key fetch); what req:body() reads, what the validate phase takes
     * (mgw__req_take_kept_body) and what the integration gets first
     * (mgw__req_forward_kept_body) */
    mgw_buf_t kept_body;
    /* head_method: no body may follow the response head (a HEAD request, or a status
     * without one); resp_chunked, resp_close: the writer's framing (http/writer.c) */
    unsigned head_done : 1, body_done : 1, resp_started : 1, resp_done : 1, resp_chunked : 1,
        resp_close : 1, head_method : 1, discard_body : 1;
    /* route_set: the protocol chose r->route before the phases (a WebSocket event) */
    unsigned route_set : 1;
    /* routing */
    int phase; /* MGW_PHASE_*: the lifecycle phase running or next to run */
    mgw_str_t raw_path, query, path, host;
    mgw_str_t route_path;       /* the path routes see: without base path and stage */
    const mgw_domain_t *domain; /* the custom domain the Host header named, or NULL */
    mgw_api_t *api;
    mgw_stage_t *stage;
    const mgw_route_t *route;
    mgw_kv_t *params;
    int nparams;
    /* the caller's API key: x-api-key, or an authorizer's usageIdentifierKey */
    mgw_str_t api_key;
    const mgw_apikey_t *key; /* the configured key it matched */
    /* throttling: the tightest limit that applied, for the RateLimit headers */
    const char *rl_name;
    uint64_t rl_quota, rl_window_s, rl_remaining, rl_reset_s;
    uint64_t retry_after_s; /* sent as Retry-After when set */
    /* response */
    mgw_str_t head_out; /* the writer's response head, held back until body bytes go with it */
    int head_pending;
    int status;
    uint64_t resp_bytes;
    mgw_gwresp_type_t error_type;
    const char *error_message; /* the response's message when not the type's (mgw__req_fail) */
    int error_status;          /* the response's status when not the type's (0: the type's) */
    const char *error_reason;  /* why, when the gateway knows more than the type says */
    /* response caching (gw/cache.c), on routes a stage's cache covers: what
     * $context.cache.status says (NULL: not cached here, and no x-cache header), the key,
     * the entry a miss fills from the response, and a hit's Age */
    const char *cache_status;
    mgw_str_t cache_key;
    mgw_rentry_t *cache_entry;
    uint64_t cache_age_s;
    char cache_age[24];
    unsigned cache_fill : 1, cache_warn : 1;
    /* request validation (gw/validate.c), at the start of the integration phase: done
     * (validated), the body it reads, and why the request failed it
     * ($context.error.validationErrorString) */
    unsigned validated : 1;
    mgw_buf_t *vbody;
    const char *validation_error;
    /* integration */
    const mgw_integ_ops_t *integ; /* the integration type that runs, once it started */
    mgw_proxy_t *px;              /* the http integration's state while it runs (http/) */
    int integ_status;
    uint64_t integ_start_ns, integ_end_ns; /* uv_hrtime(), the clock of start_ns */
    const char *integ_error;
    /* timing */
    uint64_t start_ns;
    uint64_t start_ms;  /* wall clock */
    char id[24];        /* the gateway's request id: extendedRequestId (requestId unless REST) */
    mgw_trace_t *trace; /* its trace context (gw/trace.c): set when tracing is on, else made
                         * when $context.traceId is asked */
    char uuid[40];      /* a REST API's requestId, once made (mgw__req_id) */
};

/* The listener a request arrived on, in the request's own generation (reloads keep the
 * listeners and their order, so the index is valid in every generation). */
static inline const mgw_listen_t *mgw__req_listen(const mgw_req_t *r)
{
    return &r->gen->listen[r->from.listen_idx];
}

/* ---- gw/request.c ---- */

/*
 * The request lifecycle after the API and stage are known, written once: the phases in
 * the order they run, each an entry of request.c's phase table. A phase function returns
 * MGW_PHASE_NEXT to go on, MGW_PHASE_STOP when it has answered the request (or failed it
 * with mgw__req_fail), or MGW_PHASE_WAIT when it continues asynchronously and will call
 * mgw__req_resume() (go on with the next phase) or mgw__req_fail() later.
 */
#define MGW_PHASES(XX)                                                                             \
    XX(WAF, waf)                                                                                   \
    XX(ROUTE, route)                                                                               \
    XX(AUTHORIZE, authorize)                                                                       \
    XX(THROTTLE, throttle)                                                                         \
    XX(CACHE, cache)                                                                               \
    XX(INTEGRATION, integration)

enum {
#define XX(id, name) MGW_PHASE_##id,
    MGW_PHASES(XX)
#undef XX
        MGW_PHASE__COUNT
};
enum { MGW_PHASE_NEXT, MGW_PHASE_STOP, MGW_PHASE_WAIT };

/* The worker's next pseudo-random 64-bit value (xorshift128+, seeded per worker: cheap,
 * not for secrets). */
uint64_t mgw__rng(mgw_worker_t *w);
/* A new request id: 12 random bytes as 16 base64 characters. */
void mgw__make_id(mgw_worker_t *w, char out[24]);
/* ---- gw/ids.c ---- */

/* $context.requestId of r: r->id, or a REST API's UUID (the client's x-amzn-RequestId
 * when it is one); made when first asked, then stable. */
const char *mgw__req_id(mgw_req_t *r);
/* The type of r's API, or of its listener's for a request refused before its API was
 * known (as the access log's stage is found); HTTP when neither is known. */
const mgw_apitype_t *mgw__req_type(const mgw_req_t *r);
/* $context.resourceId: a stable id of r's route's resource (its path template) in its
 * API, shaped like API Gateway's (10 characters of [a-z0-9]); 1 and *out when routed. */
int mgw__req_resource_id(mgw_req_t *r, mgw_str_t *out);
/* A new request on connection c (from: what the core knows of c), answered through the
 * writer of client connections (gw/gw.h). */
mgw_req_t *mgw__req_new(mgw_conn_t *c, const mgw_req_from_t *from);
/* Runs the phases from r->phase on. */
void mgw__req_continue(mgw_req_t *r);
/* Ends the phase that returned MGW_PHASE_WAIT successfully and runs the next ones. */
void mgw__req_resume(mgw_req_t *r);
/* Called when the head is parsed: hands r to the handler of its listener's kind (for an
 * API listener: resolves, routes and runs the phases). */
void mgw__req_dispatch(mgw_req_t *r);
/*
 * Sends the gateway response of type. Its body says the type's message, or message when
 * set (AWS words some cases of a type differently: the authorizer's explicit deny); its
 * status is the configured one, else r->error_status when set (a REST API's failed Lua
 * handler: 502), else the type's.
 * $context.error.message says r->error_reason instead when the caller set one. When the
 * response has started already, the client sees it cut short instead.
 */
void mgw__req_fail(mgw_req_t *r, mgw_gwresp_type_t type, const char *message);
/* mgw__req_fail with n more headers (e.g. a 401's WWW-Authenticate) after the type's. */
void mgw__req_fail_with(mgw_req_t *r, mgw_gwresp_type_t type, const char *message,
                        const mgw_hdr_t *hdrs, int n);
/* Starts the response (through r->wr, with the gateway's headers added: request id,
 * Retry-After, RateLimit); content_length < 0 means a streamed body. */
void mgw__resp_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs,
                    int64_t content_length);
/* Body bytes of the response (see mgw_writer_ops_t.body); dropped when none may follow. */
void mgw__resp_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref);
/* Ends the response; r may be freed before this returns. */
void mgw__resp_end(mgw_req_t *r);
/* A whole small response: status, content type, body (a C string) and at most one more
 * header (nextra 0 or 1). */
void mgw__resp_text(mgw_req_t *r, int status, const char *type, const char *body,
                    const mgw_hdr_t *extra, int nextra);
/* Sends a held-back response head now (a streamed body is not there yet). */
void mgw__resp_flush(mgw_req_t *r);
/* The request's header named name (lower case), or an empty string with p == NULL. */
mgw_str_t mgw__req_header(const mgw_req_t *r, const char *name);
/* A new header at the end of r's list (the parser's and req:set_header's), the list
 * doubled in the request arena when full. */
static inline mgw_hdr_t *mgw__req_push_header(mgw_req_t *r)
{
    if (r->nheaders == r->cap_headers) {
        int cap = r->cap_headers ? r->cap_headers * 2 : 16;
        mgw_hdr_t *h = mgw_pool_alloc(r->pool, sizeof(*h) * (size_t)cap);
        if (r->nheaders) memcpy(h, r->headers, sizeof(*h) * (size_t)r->nheaders);
        r->headers = h;
        r->cap_headers = cap;
    }
    return &r->headers[r->nheaders++];
}
/* The request body is about to be read: tells a client that waits for a go-ahead to send
 * it (see mgw_writer_ops_t.want_body), unless it has arrived. */
void mgw__req_send_continue(mgw_req_t *r);
/* The integration that runs for r has started and takes the request body: what policy
 * hooks kept of it while they ran goes to it now (called by the integration). */
void mgw__req_forward_kept_body(mgw_req_t *r);
/*
 * What happens on the client's side of r, told by the protocol handler. Request body
 * bytes (slices of ref go on without a copy) and the body's end go to the integration
 * once it has started and takes the body, else to the policy hooks while they run, and
 * are dropped once the response is done (r->discard_body). The end may answer r.
 */
void mgw__req_body(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref);
void mgw__req_body_done(mgw_req_t *r);
/* The client took some of the response / its pending writes drained (see
 * mgw_integ_ops_t): told to the integration that runs. */
void mgw__req_client_progress(mgw_req_t *r);
void mgw__req_client_drained(mgw_req_t *r);
/* r ends before its response is done (the client went away, its connection failed):
 * the integration that runs for it stops. The caller frees r. */
void mgw__req_abort(mgw_req_t *r);
/* v in decimal, in r's arena, as a $context value: *out, and 1 (lookups return it). */
int mgw__req_u64(mgw_req_t *r, uint64_t v, mgw_str_t *out);
/* The value of a $context variable (see template.h) for r; 1 when it has one. */
int mgw__req_lookup(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out);
/* Fills lv with the throttle levels that apply to r, in the order they are taken, for the
 * caller's plan membership m (or NULL); returns how many. */
int mgw__req_limits(const mgw_req_t *r, const mgw_member_t *m, mgw_limit_t lv[MGW_LIMITS_MAX]);
/* What policy hooks kept of the request body while they ran moves to into (the validate
 * phase reads the whole body); nothing when no hook ran. */
void mgw__req_take_kept_body(mgw_req_t *r, mgw_buf_t *into);
/* Writes the access-log line and frees the request. */
void mgw__req_free(mgw_req_t *r);
/* Milliseconds on the loop clock. */
uint64_t mgw__now_ms(const mgw_req_t *r);

/* The caller's API key, from where r's API takes it (api_key_source); p NULL when none. */
mgw_str_t mgw__req_caller_key(const mgw_req_t *r);

/* ---- gw/trace.c ---- */

/* A request's W3C trace context (README "Tracing"), in its arena. */
struct mgw_trace_s {
    uint8_t trace_id[16];
    uint8_t parent_id[8];  /* the caller's span (a continued trace), else zeros */
    uint8_t span_id[8];    /* the gateway's span (SERVER) */
    uint8_t integ_id[8];   /* the integration's span (CLIENT): the parent backends see */
    unsigned remote : 1;   /* continued from a valid traceparent */
    unsigned sampled : 1;  /* the sampled flag sent on */
    unsigned exported : 1; /* sampled and an exporter is configured: a span is queued */
    mgw_str_t tracestate;  /* the caller's, checked (and cut to 512 characters), or empty */
    const char *integ_url; /* what the http integration called (http/proxy.c) */
    uint64_t phase_ns[MGW_PHASE__COUNT][2]; /* uv_hrtime() when each phase began, ended */
};

/* Parses a traceparent value as W3C Trace Context Level 1 says; 0 with the ids and the
 * flags, or -1 when it is not valid (the caller starts a new trace). */
int mgw__traceparent_parse(const char *p, size_t n, uint8_t trace_id[16], uint8_t parent_id[8],
                           uint8_t *flags);
/* Checks a (combined) tracestate value: 0 with what goes on in *out (in pool; members over
 * 128 characters, then the last ones, dropped until it fits 512), -1 when invalid. */
int mgw__tracestate_check(mgw_pool_t *pool, mgw_str_t in, mgw_str_t *out);
/* r's trace context, made on first use: the caller's when its traceparent is valid, else
 * a new trace; sampled per the configuration's otlp.sample_ratio. */
mgw_trace_t *mgw__trace(mgw_req_t *r);
/* The headers a call made for r carries (traceparent with parent as the parent id,
 * tracestate, the request id header): fills out (room for 3), returns how many. */
int mgw__trace_headers(mgw_req_t *r, const uint8_t parent[8], mgw_hdr_t out[3]);
/* 1 when name is a header mgw__trace_headers writes (the caller's copy is dropped). */
int mgw__trace_own_header(const mgw_req_t *r, mgw_str_t name);
/* Appends r's spans (its own, and its WAF, authorizer and integration spans when they ran)
 * to b as OTLP/HTTP JSON span objects separated by commas (a comma first when sep);
 * returns how many. */
int mgw__trace_encode(mgw_req_t *r, mgw_buf_t *b, int sep);
/* n bytes as 2n lower-case hex digits at out (not terminated). */
void mgw__hex(const uint8_t *p, size_t n, char *out);

/* ---- gw/cache.c ---- */

/* The cache phase of a route its stage's cache covers (r->stage->cache): a hit answers
 * r (MGW_PHASE_STOP); a miss goes on with an entry to fill from the response. Runs the
 * route's request validation first. */
int mgw__cache_phase(mgw_req_t *r);
/* The response of a request the cache phase saw (r->cache_status set): its head adds
 * x-cache (and a hit's Age, a Warning) to more[k...] and returns the new count, and
 * starts the entry of a miss; body bytes and the end fill and publish it. */
int mgw__cache_head(mgw_req_t *r, int status, const mgw_hdr_t *hdrs, int nhdrs, mgw_hdr_t *more,
                    int k);
void mgw__cache_body(mgw_req_t *r, const char *p, size_t n);
void mgw__cache_end(mgw_req_t *r);

/* ---- gw/validate.c ---- */

/*
 * The next query parameter named name in [*p, end) (names percent-decoded, values raw):
 * 1 with its value in *value (empty when it has no '='), *p moved past it; 0 when none is
 * left. Walk a query string with p = r->query.p, end = p + r->query.n.
 */
int mgw__query_next(const char **p, const char *end, mgw_str_t name, mgw_str_t *value);

/* Request validation of a route that has it (r->route->validation), which the
 * integration phase runs before the integration starts; returns like a phase, and when
 * it waited for the body, runs the integration phase again (mgw__req_continue). */
int mgw__validate(mgw_req_t *r);
/* Request body bytes, and its end, while request validation reads the body (r->vbody);
 * the end validates it and answers r or goes on with the integration. */
void mgw__validate_body(mgw_req_t *r, const char *p, size_t n);
void mgw__validate_body_done(mgw_req_t *r);

#endif
