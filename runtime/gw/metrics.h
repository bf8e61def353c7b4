/*
 * Request metrics, for GET /metrics on the management listener (README "Metrics").
 *
 * Counters live per worker: each series (an API, stage and route key; or an API and
 * stage) owns one block of counters per worker thread, on cache lines of its own, and a
 * worker adds to its own block only, with plain loads and stores (relaxed atomics, which
 * compile to ordinary instructions on x86-64): no lock and no locked instruction on the
 * request path. The main thread sums the workers' blocks when it is scraped.
 *
 * Series are found by their label values, in a registry that only the main thread
 * changes: when a generation is prepared (before any worker sees it) each of its routes
 * and stages is given the registry's series for its (api, stage, route key), made the
 * first time that key is seen. A reload that keeps a route keeps its series and so its
 * counts; a series whose route a reload removed is no longer exported but is kept, so a
 * route that comes back continues where it stopped (a Prometheus counter never goes
 * back). The registry grows with the distinct route keys the process has served and is
 * freed at shutdown.
 */
#ifndef MGW_METRICS_H
#define MGW_METRICS_H

#include "base/pool.h"
#include "base/stat.h"
#include "conf/gen.h"

typedef struct mgw_req_s mgw_req_t;

/* Main thread, before any worker sees g (start-up and each reload): gives g its metrics
 * table (g->metrics, freed with g), for g->workers worker threads. */
void mgw_metrics_gen_prepare(mgw_gen_t *g);

/* Worker thread, at the end of r (its response done or abandoned): counts r in its
 * route's block of the worker (requests by status class, latency, integration latency,
 * gateway response type, throttle level). Requests of the main thread (the management
 * listener's) and requests that got no response status are not counted. */
void mgw__metrics_request(const mgw_req_t *r);

/*
 * Authorizer outcomes (moongate_authorizer_results_total's outcome label) and its cache
 * (moongate_authorizer_cache_total), counted by both kinds of authorizer: the JWT one
 * (auth/authz.c) and the Lua ones (lua/ffi_metrics.c, for runtime.lua). The families are
 * defined once, here, for both.
 */
enum {
    MGW_AUTHZ_OUT_ALLOW,        /* the request goes on */
    MGW_AUTHZ_OUT_DENY,         /* 403: an explicit deny, or a JWT without the route's scope */
    MGW_AUTHZ_OUT_UNAUTHORIZED, /* 401: no identity, a refused token, "Unauthorized" */
    MGW_AUTHZ_OUT_ERROR,        /* 500 (a Lua authorizer that failed) or a JWT authorizer
                                 * without keys to check with (its JWKS could not be fetched) */
    MGW_AUTHZ_OUT__COUNT
};

/* One authorizer's series: by outcome, then cache hit and miss (0, the null series, when
 * its cache is off). */
typedef struct {
    mgw_stat_t outcome[MGW_AUTHZ_OUT__COUNT];
    mgw_stat_t hit, miss;
} mgw_authz_stat_t;

/* Any thread, off the request path (when a generation is prepared or loaded): fills s
 * with the series of the authorizer name of API api; cached: it has a cache. */
void mgw_metrics_authorizer(mgw_authz_stat_t *s, const char *api, const char *name, int cached);

/* Worker thread: counts a request that the quota of m's plan took (ok) or refused
 * (moongate_quota_requests_total). */
void mgw__metrics_quota(const mgw_req_t *r, const mgw_member_t *m, int ok);

/* Main thread: appends the request families of g's series, summed over the workers, to
 * b in the Prometheus text format. */
void mgw_metrics_render(const mgw_gen_t *g, mgw_buf_t *b);

/* Main thread, after every worker has stopped: frees the registry. */
void mgw_metrics_free(void);

#endif
