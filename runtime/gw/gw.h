/*
 * The request core's tables, which the layers above fill in at start-up (before any
 * worker starts; read-only afterwards), so that gw/ calls up into them only through
 * pointers: the response writer of client connections (http/), the integration types
 * (mock here, http by http/, lua by lua/), the authorizer types (lua by lua/, jwt by auth/),
 * the policy hooks (lua/; none registered: no Lua) and the request handler of each
 * listener kind (API listeners: the gateway's phases; the management listener: ctl/) and
 * the store of exact throttle limits (cluster/).
 * A new integration, authorizer or listener kind is a new entry, not a new branch.
 */
#ifndef MGW_GW_H
#define MGW_GW_H

#include "base/pool.h"
#include "base/throttle.h"
#include "conf/gen.h"
#include "gw/writer.h"

typedef struct mgw_req_s mgw_req_t;

/* An integration type: what answers a request once it has passed every check. */
typedef struct mgw_integ_ops_s {
    const char *name;
    /*
     * Runs r->route's integration. Returns MGW_PHASE_STOP when r has been answered (or
     * failed with mgw__req_fail), MGW_PHASE_WAIT when the answer comes later; r may be
     * freed by the time either returns.
     */
    int (*start)(mgw_req_t *r);
    /* r ends before its integration answered (a gateway response, the client gone):
     * stop what runs for it. NULL when there is nothing to stop. */
    void (*abort)(mgw_req_t *r);
    /*
     * The client's side, once the integration has started (mgw__req_body and the others,
     * req_int.h); each may be NULL. body: request body bytes for it (slices of ref go on
     * without a copy); body_done: the body is complete. An integration without body
     * leaves the body to the policy hooks (a lua integration reads it through them).
     * client_progress: the client took some of the response; client_drained: the
     * client's pending writes fell below the low mark (an integration that stopped
     * reading its source because of them reads again).
     */
    void (*body)(mgw_req_t *r, const char *p, size_t n, mgw_rbuf_t *ref);
    void (*body_done)(mgw_req_t *r);
    void (*client_progress)(mgw_req_t *r);
    void (*client_drained)(mgw_req_t *r);
} mgw_integ_ops_t;

/* An authorizer type (mgw_route_t.authorizer_type). */
typedef struct mgw_authz_ops_s {
    const char *name;
    /* The authorize phase for r: MGW_PHASE_NEXT (allowed), MGW_PHASE_STOP (refused with
     * a gateway response) or MGW_PHASE_WAIT (calls mgw__req_resume or mgw__req_fail). */
    int (*authorize)(mgw_req_t *r);
    /* Optional: the $context values it produces for r (authorizer.*: MGW_VAR_AUTHORIZER_*),
     * asked before the policy hooks are; 1 when found. */
    int (*lookup)(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out);
} mgw_authz_ops_t;

/* The policy hooks of the phases and the access log (lua/hooks.c). */
typedef struct mgw_gw_hooks_s {
    /* The stage's web ACL (r->stage->waf); returns like a phase. */
    int (*waf)(mgw_req_t *r);
    /* The API's route selector (r->api->selector): MGW_PHASE_NEXT with r->route set (or
     * NULL: the route keys decide), MGW_PHASE_STOP or MGW_PHASE_WAIT. */
    int (*select_route)(mgw_req_t *r);
    /* The request body's end came while the request's hooks run (r->lua set, no
     * integration that takes the body, no response yet; the bytes are in r->kept_body):
     * a hook waiting for it resumes, which may answer r. */
    void (*body_done)(mgw_req_t *r);
    /* The stage's log policy; returns 1 when it wrote the whole line into line. */
    int (*log)(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *line);
    /* $context values hooks produce (authorizer.*, waf.*, custom.*); 1 when found. */
    int (*lookup)(mgw_req_t *r, int var, mgw_str_t arg, mgw_str_t *out);
    /* The stage's WAF log (st->waf_log), for a request already sampled: returns 1 when
     * it wrote r's line (newline included) into line, 0 when r has none (no web ACL ran,
     * a rule failed, a filter dropped it). */
    int (*waf_log)(mgw_req_t *r, const mgw_stage_t *st, mgw_buf_t *line);
} mgw_gw_hooks_t;

/* Most throttle levels a request can have (account, stage-shared, route, plan, plan-route). */
#define MGW_LIMITS_MAX 5

/* What the store of exact limits answered (mgw_exact_ops_t.check). */
typedef struct {
    int decided; /* 0: no answer in time (Redis down, late, an error): decide locally */
    int refused; /* decided: the index of the bucket that refused, or -1 (all admitted) */
    /* decided: per bucket in order, its state after this request (remaining, reset_ms);
     * the refusing one's retry_after_ms; nothing after it (none was taken: all or none) */
    mgw_take_t take[MGW_LIMITS_MAX];
} mgw_exact_t;

/* Throttle limits decided per request by a shared store (cluster/exact.c: Redis), for
 * the buckets marked exact (base/throttle.h mgw_bucket_set_exact). */
typedef struct mgw_exact_ops_s {
    /*
     * Takes a token from each of the n buckets b (at most MGW_LIMITS_MAX), or from none.
     * Returns 0 when the answer comes later: done(r, arg, answer) runs on r's worker, not
     * at all when r ends first; or -1 when it cannot ask now (the buckets decide locally).
     */
    int (*check)(mgw_req_t *r, mgw_bucket_t *const *b, int n,
                 void (*done)(mgw_req_t *r, void *arg, const mgw_exact_t *answer), void *arg);
} mgw_exact_ops_t;

/* Handles a request whose head has arrived on a listener of some kind: answers it now
 * or later (through mgw__resp_* or mgw__req_fail). */
typedef void (*mgw_req_handler_t)(mgw_req_t *r);

/* The writer of the requests of client connections (mgw__req_new). */
void mgw_gw_set_writer(const mgw_writer_ops_t *writer);
/* The implementation of integration type (MGW_INTEG_*). */
void mgw_gw_set_integration(int type, const mgw_integ_ops_t *ops);
/* The implementation of authorizer type (MGW_AUTHZ_*, not NONE). */
void mgw_gw_set_authorizer(int type, const mgw_authz_ops_t *ops);
/* The policy hooks (NULL: none; a stage or API that uses one then fails its requests). */
void mgw_gw_set_hooks(const mgw_gw_hooks_t *hooks);
/* The store of exact limits (NULL: none; exact buckets are then local ones). */
void mgw_gw_set_exact(const mgw_exact_ops_t *ops);
/* The handler of the requests that arrive on listeners of kind (MGW_LISTEN_*). */
void mgw_gw_set_handler(int kind, mgw_req_handler_t handler);
/* The handler of the requests to APIs of protocol (MGW_PROTO_*, not HTTP), called once
 * the API and stage are known (r->api, r->stage), instead of the phases. */
void mgw_gw_set_protocol(int protocol, mgw_req_handler_t handler);
/* Where the spans of a request whose trace is exported go when it ends, before its access-log
 * line (http/otlp.c; NULL: nowhere). */
void mgw_gw_set_span_sink(mgw_req_handler_t sink);

#endif
